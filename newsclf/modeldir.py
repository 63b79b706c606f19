"""The model directory: one self-contained, checked folder per trained model.

Files: ``config.json`` (settings, sizes, library versions, and a SHA-256 of every other file it
vouches for), ``vocab.json``, ``labels.json``, ``model.safetensors`` (no pickle), an optional
``user_dict.txt``, ``metrics.json`` and ``train_log.jsonl``. Every file is written to a temporary
name and renamed; ``config.json`` is written last, so an interrupted save is detected on load as
a hash mismatch and refused instead of half-loading.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newsclf import __version__
from newsclf.config import TrainConfig
from newsclf.errors import ModelDirError, NewsclfError
from newsclf.vocab import Vocab

FORMAT = "newsclf-model"
FORMAT_VERSION = 1
CONFIG, VOCAB, LABELS, WEIGHTS, USER_DICT = (
    "config.json", "vocab.json", "labels.json", "model.safetensors", "user_dict.txt")
METRICS, TRAIN_LOG, EVAL_DEV = "metrics.json", "train_log.jsonl", "eval_dev"


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a file so that readers see either the old content or the new, never a mix."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, value) -> None:
    write_atomic(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("paddlepaddle", "jieba", "numpy", "scikit-learn"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


@dataclass
class ModelFiles:
    """What a model directory holds, loaded and checked."""

    path: Path
    config: TrainConfig
    vocab: Vocab
    labels: list[str]
    weights: dict
    n_features: int
    user_dict: str | None
    info: dict


def save_model_dir(path: str | Path, *, config: TrainConfig, vocab: Vocab, labels: list[str],
                   weights: dict, n_features: int, extra: dict | None = None) -> None:
    """Write (or overwrite) the model files of ``path``; ``config.json`` last."""
    from safetensors.numpy import save as save_safetensors

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    blobs = {
        VOCAB: json.dumps({"tokens": vocab.tokens}, ensure_ascii=False).encode("utf-8"),
        LABELS: json.dumps(labels, ensure_ascii=False).encode("utf-8"),
        WEIGHTS: save_safetensors({k: np.ascontiguousarray(v) for k, v in weights.items()}),
    }
    settings = config.to_dict()
    if config.user_dict:
        try:
            blobs[USER_DICT] = Path(config.user_dict).read_bytes()
        except OSError as exc:
            raise NewsclfError(f"{config.user_dict}: cannot read user dictionary ({exc.strerror})") from None
        settings["user_dict"] = USER_DICT
    for name, blob in blobs.items():
        write_atomic(path / name, blob)
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "newsclf_version": __version__,
        "config": settings,
        "n_features": n_features,
        "vocab_size": len(vocab),
        "n_classes": len(labels),
        "weights": {k: list(v.shape) for k, v in weights.items()},
        "files": {name: {"sha256": _sha256(blob), "bytes": len(blob)} for name, blob in blobs.items()},
        "libraries": library_versions(),
        **(extra or {}),
    }
    write_json(path / CONFIG, info)


def load_model_dir(path: str | Path) -> ModelFiles:
    """Read and check a model directory; any missing, damaged or mismatched file raises
    :class:`ModelDirError` naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_safetensors

    path = Path(path)
    if not path.is_dir():
        raise ModelDirError(f"{path}: model directory not found")
    config_path = path / CONFIG
    if not config_path.is_file():
        raise ModelDirError(f"{path}: not a newsclf model directory (no {CONFIG}); "
                            "train one with 'newsclf train'")
    try:
        info = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{config_path}: damaged ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelDirError(f"{config_path}: not a newsclf model config")
    version = info.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelDirError(f"{path}: model format version {version} is newer than this newsclf "
                            f"({__version__}) reads (version {FORMAT_VERSION}); upgrade newsclf")
    try:
        files = info["files"]
        settings = dict(info["config"])
        n_features = int(info["n_features"])
        expected_shapes = info["weights"]
        vocab_size, n_classes = int(info["vocab_size"]), int(info["n_classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(f"{config_path}: incomplete or edited config ({exc})") from None

    blobs = {}
    for name, expected in files.items():
        try:
            blob = (path / name).read_bytes()
        except FileNotFoundError:
            raise ModelDirError(f"{path / name}: missing from the model directory") from None
        if len(blob) != expected.get("bytes") or _sha256(blob) != expected.get("sha256"):
            raise ModelDirError(f"{path / name}: does not match {CONFIG} (damaged, truncated, "
                                "edited, or from an interrupted save); retrain or restore it")
        blobs[name] = blob
    for name in (VOCAB, LABELS, WEIGHTS):
        if name not in blobs:
            raise ModelDirError(f"{config_path}: lists no {name}; the directory is incomplete")

    user_dict = None
    if settings.get("user_dict"):
        user_dict = str(path / USER_DICT)
        settings["user_dict"] = user_dict
    try:
        config = TrainConfig.from_dict(settings, source=str(config_path))
    except NewsclfError as exc:
        raise ModelDirError(str(exc)) from None
    vocab = Vocab(json.loads(blobs[VOCAB])["tokens"])
    labels = json.loads(blobs[LABELS])
    try:
        weights = load_safetensors(blobs[WEIGHTS])
    except (SafetensorError, ValueError) as exc:
        raise ModelDirError(f"{path / WEIGHTS}: unreadable weights ({exc})") from None
    if len(vocab) != vocab_size:
        raise ModelDirError(f"{path / VOCAB}: {len(vocab)} entries, config says {vocab_size}")
    if len(labels) != n_classes or not all(isinstance(x, str) for x in labels):
        raise ModelDirError(f"{path / LABELS}: {len(labels)} labels, config says {n_classes}")
    actual_shapes = {k: list(v.shape) for k, v in weights.items()}
    if actual_shapes != expected_shapes:
        raise ModelDirError(f"{path / WEIGHTS}: tensor names or shapes differ from {CONFIG}")
    return ModelFiles(path, config, vocab, labels, weights, n_features, user_dict, info)
