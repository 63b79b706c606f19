"""The inference export of a model directory (``DIR/inference``): writing it, checking that it
computes what the network computes, and telling whether a directory's export can be used.

``export.json`` ties the export to the exact model it was made from (the model directory's
fingerprint), so an export left behind by other weights or an edited config is never used.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import numpy as np

from newsclf.errors import ModelDirError
from newsclf.files import sha256_file, write_json
from newsclf.modeldir import ModelFiles, load_model_dir

EXPORT_DIR, EXPORT_PREFIX, EXPORT_INFO = "inference", "model", "export.json"


def export_problem(files: ModelFiles) -> str | None:
    """Why the directory's inference export cannot be used (None: it can)."""
    directory = files.path / EXPORT_DIR
    try:
        info = json.loads((directory / EXPORT_INFO).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no inference export"
    except (ValueError, UnicodeDecodeError):
        return f"{directory / EXPORT_INFO} is damaged"
    if not isinstance(info, dict):
        return f"{directory / EXPORT_INFO} is damaged"
    # exports written before newsclf 0.2 name the weights only
    made_from = info.get("model_fingerprint", info.get("weights_sha256"))
    if made_from != files.fingerprint:
        return "its inference export is from another model (stale)"
    for name, digest in (info.get("files") or {}).items():
        if not (directory / name).is_file() or sha256_file(directory / name) != digest:
            return f"its inference export file {name} is missing or damaged"
    return None


def _export_static(network, prefix: str, n_features: int) -> None:
    """Save the network as a static graph (``prefix.json`` + ``prefix.pdiparams``); batch size
    and length stay dynamic."""
    import paddle
    from paddle.static import InputSpec

    network.eval()
    static = paddle.jit.to_static(
        network, input_spec=[InputSpec([None, None, n_features], "int64", name="ids")],
        full_graph=True)
    paddle.jit.save(static, prefix)


def load_network(files: ModelFiles):
    """The network of a loaded model directory, with its weights, in evaluation mode."""
    from newsclf.runtime import configure_paddle

    paddle = configure_paddle()
    from newsclf.model.layers import build_network

    network = build_network(files.spec)
    expected = {k: list(v.shape) for k, v in network.state_dict().items()}
    if expected != {k: list(v.shape) for k, v in files.weights.items()}:
        raise ModelDirError(f"{files.path}: the weights do not fit the model config.json "
                            "describes (names or shapes differ)")
    network.set_state_dict({k: paddle.to_tensor(v) for k, v in files.weights.items()})
    network.eval()
    return network


def export_model(model_dir: str | Path, tolerance: float = 1e-3) -> dict:
    """Write the Paddle Inference export of a model directory into ``DIR/inference`` and check
    that it gives the network's scores (max absolute difference within ``tolerance``) on random
    texts of every length up to ``max_len``. Returns the export info."""
    from newsclf.model.inference import InferenceEngine, predict_scores

    files = load_model_dir(model_dir)
    network = load_network(files)
    spec = files.spec
    rng = np.random.RandomState(0)
    probe = [rng.randint(2, spec.vocab_size, size=(length, spec.n_features)).astype(np.int64)
             for length in range(1, spec.max_len + 1)]
    target = files.path / EXPORT_DIR
    staging = files.path / f".inference-{secrets.token_hex(4)}"
    staging.mkdir(0o777)  # the umask applies, as to every file newsclf writes
    try:
        _export_static(network, str(staging / EXPORT_PREFIX), spec.n_features)
        engine = InferenceEngine(str(staging / EXPORT_PREFIX))
        difference = float(np.abs(predict_scores(engine, probe, 16)
                                  - predict_scores(network, probe, 16)).max())
        if not difference <= tolerance:
            raise ModelDirError(f"{files.path}: the exported graph's scores differ from the "
                                f"model's by {difference:.2g} (over {tolerance}); not exported")
        info = {"model_fingerprint": files.fingerprint,
                # what releases before 0.2 check: they name format-1 exports by the weights
                "weights_sha256": files.info["files"]["model.safetensors"]["sha256"],
                "files": {p.name: sha256_file(p) for p in sorted(staging.iterdir())},
                "max_abs_logit_difference": difference, "checked_lengths": len(probe)}
        write_json(staging / EXPORT_INFO, info)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info
