"""The model directory: one self-contained, checked folder per trained model, and its format.

Files: ``config.json`` (the format version, the :class:`~newsclf.spec.ModelSpec` under
``"model"``, tensor shapes, library versions, the SHA-256 of every file it vouches for, and a
checksum of itself), ``vocab.json``, ``labels.json``, ``model.safetensors`` (no pickle), an
optional ``user_dict.txt``, ``training.json`` (the training settings: a record, never needed to
load), ``metrics.json`` and ``train_log.jsonl``. Every file is written to a temporary name and
renamed, ``config.json`` last, so an interrupted save is detected on load and refused instead
of half-loading.

Format versions: a directory of an older format is read through the migrations below (in
memory; the files stay as they are), so every directory any release wrote keeps loading. One of
a newer format is refused with a message to upgrade.

- 1: ``config.json`` held the training settings under ``"config"``; loading rebuilt them.
- 2: the model description under ``"model"``, the training settings apart in
  ``training.json``, and a checksum that makes hand edits of ``config.json`` detectable.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

from newsclf import __version__
from newsclf.errors import ModelDirError
from newsclf.files import sha256_bytes, write_atomic, write_json
from newsclf.layouts import (CHECKPOINT_DIR, CLASS_VALUES_FILE, CONFIG, EVAL_DEV,  # noqa: F401
                             EVAL_REPORTS_PREFIX, EXPORT_DIR, EXPORT_FILES, LABELS, METRICS,
                             MODEL_FORMAT, PREDICTION_FILES, TRAIN_LOG, TRAINING, USER_DICT,
                             VOCAB, WEIGHTS, is_model_dir)
from newsclf.spec import ModelSpec
from newsclf.tokenize import UserDictionary
from newsclf.vocab import Vocab

FORMAT = MODEL_FORMAT
FORMAT_VERSION = 2


def library_versions() -> dict:
    """The versions a model directory records of what trained it."""
    return {"python": platform.python_version(),
            **installed_versions("paddlepaddle", "jieba", "numpy", "scikit-learn")}


def installed_versions(*packages: str) -> dict:
    """Each package's installed version, None for one that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def _checksum(info: dict) -> str:
    """The checksum of a config.json's content (every entry but the checksum itself)."""
    content = {k: v for k, v in info.items() if k != "checksum"}
    return sha256_bytes(json.dumps(content, sort_keys=True, ensure_ascii=False,
                                   separators=(",", ":")).encode("utf-8"))


@dataclass
class ModelFiles:
    """What a model directory holds, loaded and checked.

    ``info`` is its ``config.json`` in the current format (migrated if older); ``training`` the
    recorded training settings (``{"settings": {...}, ...}``; informative only);
    ``fingerprint`` identifies this exact model (config and weights) for derived files such as
    the inference export."""

    path: Path
    spec: ModelSpec
    vocab: Vocab
    labels: list[str]
    weights: dict
    user_dict: str | None
    info: dict
    training: dict
    fingerprint: str
    format_version: int


def save_model_dir(path: str | Path, *, spec: ModelSpec, vocab: Vocab, labels: list[str],
                   weights: dict, training: dict,
                   user_dict: UserDictionary | None = None) -> None:
    """Write (or overwrite) the model files of ``path``, ``config.json`` last. ``user_dict`` is
    the jieba user dictionary the model was trained with (written in when ``spec.user_dict``
    names one); ``training`` the record of how the model was trained (JSON-ready)."""
    import numpy as np
    from safetensors.numpy import save as save_safetensors

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    blobs = {
        VOCAB: json.dumps({"tokens": vocab.tokens}, ensure_ascii=False).encode("utf-8"),
        LABELS: json.dumps(labels, ensure_ascii=False).encode("utf-8"),
        WEIGHTS: save_safetensors({k: np.ascontiguousarray(v) for k, v in weights.items()}),
    }
    if spec.user_dict:
        blobs[spec.user_dict] = user_dict.text.encode("utf-8")
    for name, blob in blobs.items():
        write_atomic(path / name, blob)
    write_json(path / TRAINING, training)  # a record, not vouched for: loading never reads it
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "newsclf_version": __version__,
        "model": spec.to_dict(),
        "weights": {k: list(v.shape) for k, v in weights.items()},
        "files": {name: {"sha256": sha256_bytes(blob), "bytes": len(blob)}
                  for name, blob in blobs.items()},
        "libraries": library_versions(),
    }
    info["checksum"] = _checksum(info)
    write_json(path / CONFIG, info)


def _read_config(path: Path) -> dict:
    config_path = path / CONFIG
    if path.exists() and not path.is_dir():
        raise ModelDirError(f"{path}: is a file, not a model directory (the folder "
                            "'newsclf train --output' wrote)")
    if not path.is_dir():
        raise ModelDirError(f"{path}: model directory not found")
    if not config_path.is_file():
        from newsclf.training.lock import unfinished_run  # which imports this module

        run = unfinished_run(path)
        if run is not None:
            raise ModelDirError(f"{path}: no model to load yet: it {run} (newsclf train "
                                f"--output {path})")
        raise ModelDirError(f"{path}: not a newsclf model directory (no {CONFIG}); "
                            "train one with 'newsclf train'")
    try:
        info = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{config_path}: damaged ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelDirError(f"{config_path}: not a newsclf model config")
    return info


def _read_record(path: Path) -> dict:
    """A JSON record such as ``training.json``; {} when absent or unreadable (it is never
    needed to load the model)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _migrate_1_to_2(info: dict, source: str) -> dict:
    """Version 1 kept the whole training configuration as the model description."""
    try:
        settings = dict(info["config"])
        weights = info["weights"]
        members = {name.split(".")[1] for name in weights if name.startswith("members.")}
        model = {
            "tokenizer": settings["tokenizer"], "max_len": settings["max_len"],
            "vocab_size": info["vocab_size"], "n_classes": info["n_classes"],
            "d_model": settings["d_model"], "n_heads": settings["n_heads"],
            "n_layers": settings["n_layers"], "d_ff": settings["d_ff"],
            "pre_ln": settings.get("pre_ln", False), "pooling": settings.get("pooling", "mean"),
            "position": settings.get("position", "sinusoidal"),
            "ensemble_size": len(members) or 1,
            "user_dict": USER_DICT if settings.get("user_dict") else None,
        }
        n_features = info["n_features"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelDirError(f"{source}: incomplete or edited config (no {exc})") from None
    migrated = {key: info[key] for key in ("format", "newsclf_version", "weights", "files",
                                           "libraries") if key in info}
    training = info.get("training")
    migrated.update(format_version=2, model=model, n_features=n_features,
                    training={"settings": settings,
                              **(training if isinstance(training, dict) else {})})
    return migrated


MIGRATIONS = {1: _migrate_1_to_2}  # format version -> function to the next version


def load_model_dir(path: str | Path) -> ModelFiles:
    """Read and check a model directory of any format version; any missing, damaged, edited or
    mismatched file raises :class:`ModelDirError` naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_safetensors

    path = Path(path)
    config_path = path / CONFIG
    info = _read_config(path)
    version = first_version = info.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ModelDirError(f"{path}: model format version {version} is newer than this "
                                f"newsclf ({__version__}) reads (up to {FORMAT_VERSION}); "
                                "upgrade newsclf")
        raise ModelDirError(f"{config_path}: unknown model format version {version!r}")
    if version == FORMAT_VERSION and info.get("checksum") != _checksum(info):
        raise ModelDirError(f"{config_path}: edited after training (its checksum does not "
                            "match); restore the file or retrain the model")
    while version < FORMAT_VERSION:
        info = MIGRATIONS[version](info, str(config_path))
        version = info["format_version"]
    try:
        files = info["files"]
        expected_shapes = info["weights"]
        blobs = {}
        for name, expected in files.items():
            try:
                blob = (path / name).read_bytes()
            except FileNotFoundError:
                raise ModelDirError(f"{path / name}: missing from the model directory") from None
            if len(blob) != expected.get("bytes") or sha256_bytes(blob) != expected.get("sha256"):
                raise ModelDirError(f"{path / name}: does not match {CONFIG} (damaged, "
                                    "truncated, edited, or from an interrupted save); retrain "
                                    "or restore it")
            blobs[name] = blob
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelDirError(f"{config_path}: incomplete or edited config ({exc})") from None
    for name in (VOCAB, LABELS, WEIGHTS):
        if name not in blobs:
            raise ModelDirError(f"{config_path}: lists no {name}; the directory is incomplete")
    spec = ModelSpec.from_dict(info.get("model"), str(config_path))
    if spec.user_dict and spec.user_dict not in blobs:
        raise ModelDirError(f"{config_path}: lists no {spec.user_dict}; the directory is incomplete")
    if "n_features" in info and info["n_features"] != spec.n_features:
        raise ModelDirError(f"{config_path}: {info['n_features']} features per token, the "
                            f"{spec.tokenizer!r} tokenizer makes {spec.n_features}")

    try:
        vocab = Vocab(json.loads(blobs[VOCAB])["tokens"])
        labels = json.loads(blobs[LABELS])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: unreadable vocabulary or labels ({exc})") from None
    try:
        weights = load_safetensors(blobs[WEIGHTS])
    except (SafetensorError, ValueError) as exc:
        raise ModelDirError(f"{path / WEIGHTS}: unreadable weights ({exc})") from None
    if len(vocab) != spec.vocab_size:
        raise ModelDirError(f"{path / VOCAB}: {len(vocab)} entries, {CONFIG} says {spec.vocab_size}")
    if (not isinstance(labels, list) or len(labels) != spec.n_classes
            or not all(isinstance(x, str) for x in labels)):
        raise ModelDirError(f"{path / LABELS}: expected {spec.n_classes} class names")
    if {k: list(v.shape) for k, v in weights.items()} != expected_shapes:
        raise ModelDirError(f"{path / WEIGHTS}: tensor names or shapes differ from {CONFIG}")

    training = info.get("training") if first_version == 1 else _read_record(path / TRAINING)
    fingerprint = info.get("checksum") or files[WEIGHTS]["sha256"]
    return ModelFiles(path, spec, vocab, labels, weights,
                      str(path / spec.user_dict) if spec.user_dict else None, info, training,
                      fingerprint, first_version)


_RECORDED_NUMBERS = ("dev_accuracy", "dev_macro_f1", "n_train", "n_dev", "best_epoch")


def directory_stamp(path: str | Path) -> tuple[tuple, tuple]:
    """What changes when a model directory is replaced, retrained, edited or deleted: the
    directory's identity and each file a model is loaded from (its identity, size and time;
    None for a missing one), then those of its inference export (which loading may write).
    Cheap enough to compare on every request."""
    def stamp(file: Path):
        try:
            found = file.stat()
        except OSError:
            return None
        return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns

    path = Path(path)
    return ((stamp(path), *(stamp(path / name) for name in PREDICTION_FILES)),
            tuple(stamp(path / EXPORT_DIR / name) for name in EXPORT_FILES))


def dev_metrics(files: ModelFiles) -> dict:
    """The model's recorded dev scores and data sizes (``metrics.json``, written by training;
    empty without a readable one: it is a record, never needed to load, and not under the
    checksums)."""
    try:
        value = json.loads((files.path / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    # an edited file may hold anything: scores that are not numbers are left out
    return {key: item for key, item in value.items()
            if key not in _RECORDED_NUMBERS or isinstance(item, (int, float))
            and not isinstance(item, bool)}
