"""The inference export of a model directory (``DIR/inference``): writing it, checking that it
computes what the network computes, and telling whether a directory's export can be used.

The export holds the network as a Paddle Inference graph (``model.json`` + ``model.pdiparams``)
and, when ONNX Runtime and paddle2onnx are installed (they are by default), as an ONNX graph
(``model.onnx``, converted with paddle2onnx) that ONNX Runtime runs without Paddle. Each graph
is kept only if its scores match the network's. ``export.json`` ties the export to the exact
model it was made from (the model directory's fingerprint), so an export left behind by other
weights or an edited config is never used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from newsclf.errors import ModelDirError, NewsclfError
from newsclf.files import first_few, names_pattern, not_newsclfs, sha256_file, write_json
from newsclf.layouts import (CONVERTED_ONNX, EXPORT_DIR, EXPORT_FILES,  # noqa: F401
                             EXPORT_INFO, EXPORT_LAYOUT, EXPORT_PREFIX, EXPORT_TOKEN_BYTES,
                             ONNX_FILE)
from newsclf.modeldir import ModelFiles, load_model_dir
# newsclf installs both; these say how to bring back one that was left out or removed
ONNX_RUNTIME_MISSING = "ONNX Runtime is not installed; pip install onnxruntime"
PADDLE2ONNX_MISSING = ("paddle2onnx is not installed (pip install paddle2onnx; it has wheels for "
                       "Python 3.12 and earlier only)")
ONNX_OPSET = 17


def export_problems(files: ModelFiles) -> tuple[str | None, str | None]:
    """Why the directory's inference export cannot run on Paddle Inference (None: it is
    current) and why its ONNX graph cannot run (None: it can, on the installed ONNX Runtime);
    ``export.json`` read once, each file hashed once."""
    digests = _export_info(files)
    if isinstance(digests, str):
        return digests, digests
    for name, digest in digests.items():
        if name != ONNX_FILE and not _intact(files.path / EXPORT_DIR / name, digest):
            problem = f"its inference export file {name} is missing or damaged"
            return problem, problem
    return None, _onnx_problem(files, digests)


def _intact(path: Path, digest: str) -> bool:
    try:
        return sha256_file(path) == digest
    except OSError:  # missing, or replaced while being read
        return False


def _export_info(files: ModelFiles) -> dict | str:
    """The digests of the export's files, by name, if the export is one of this model (else
    why not)."""
    directory = files.path / EXPORT_DIR
    try:
        info = json.loads((directory / EXPORT_INFO).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return "it has no inference export"
    except OSError as exc:
        return f"{directory / EXPORT_INFO} cannot be read ({exc.strerror})"
    except (ValueError, UnicodeDecodeError):
        return f"{directory / EXPORT_INFO} is damaged"
    if not isinstance(info, dict):
        return f"{directory / EXPORT_INFO} is damaged"
    # exports written before newsclf 0.2 name the weights only
    made_from = info.get("model_fingerprint", info.get("weights_sha256"))
    if made_from != files.fingerprint:
        return "its inference export is from another model (stale)"
    digests = info.get("files") or {}
    return digests if isinstance(digests, dict) else f"{directory / EXPORT_INFO} is damaged"


def _export_static(network, prefix: str, n_features: int) -> None:
    """Save the network as a static graph (``prefix.json`` + ``prefix.pdiparams``); batch size
    and length stay dynamic."""
    from paddle.static import InputSpec

    save_static(network, prefix, [InputSpec([None, None, n_features], "int64", name="ids")])


def save_static(network, prefix: str, input_spec: list) -> None:
    """Save ``network`` (in evaluation mode) as the static graph of ``input_spec``
    (``prefix.json`` + ``prefix.pdiparams``)."""
    import paddle

    network.eval()
    paddle.jit.save(paddle.jit.to_static(network, input_spec=input_spec, full_graph=True), prefix)


def _onnx_problem(files: ModelFiles, digests: dict) -> str | None:
    """Why the ONNX graph of a current export (its files' ``digests``) cannot run on ONNX
    Runtime (None: it can)."""
    from newsclf.model.inference import onnx_runtime_installed

    if not onnx_runtime_installed():
        return ONNX_RUNTIME_MISSING
    if ONNX_FILE not in digests:
        return (f"its inference export has no ONNX graph; run 'newsclf export --model "
                f"{files.path}' to add one (it needs paddle2onnx)")
    if not _intact(files.path / EXPORT_DIR / ONNX_FILE, digests[ONNX_FILE]):
        return (f"its inference export file {ONNX_FILE} is missing or damaged; run "
                f"'newsclf export --model {files.path}'")
    return None


@contextmanager
def _output_captured():
    """Capture what the block writes to file descriptors 1 and 2 (paddle2onnx's C++ code
    prints there directly); yields a function returning the captured text."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            yield lambda: (capture.seek(0), capture.read().decode("utf-8", "replace"))[1]
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def export_onnx(prefix: str, onnx_path: Path) -> str | None:
    """Convert the Paddle graph at ``prefix`` to ONNX, constants folded; returns why not (None:
    done)."""
    if importlib.util.find_spec("paddle2onnx") is None:
        return PADDLE2ONNX_MISSING
    converted = onnx_path.with_name(CONVERTED_ONNX)
    try:
        with _output_captured() as captured:
            import paddle2onnx

            try:
                # optimize_tool "None": its polygraphy pass would try to pip-install a package
                paddle2onnx.export(prefix + ".json", prefix + ".pdiparams",
                                   save_file=str(converted), opset_version=ONNX_OPSET,
                                   enable_onnx_checker=True, verbose=False, optimize_tool="None")
            except Exception as exc:  # it reports most failures by logging, some by raising
                return f"paddle2onnx failed: {exc}"
            output = captured()
        if not converted.is_file():
            lines = [line for line in output.splitlines() if "rror" in line]
            return "paddle2onnx failed" + (f": {lines[-1].strip()}" if lines else "")
        _fold_constants(converted, onnx_path)
    finally:
        converted.unlink(missing_ok=True)
    return None


def _fold_constants(source: Path, target: Path) -> None:
    """Save ONNX Runtime's basic optimization of ``source`` (constant folding, redundant nodes
    removed; portable across machines) as ``target``. The converter multiplies each embedding
    table by a padding mask of the same size at run time: folding halves the file and its
    loading time."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def load_network(files: ModelFiles):
    """The network of a loaded model directory, with its weights, in evaluation mode."""
    from newsclf.model.layers import build_network, load_weights

    network = build_network(files.spec)
    expected = {k: list(v.shape) for k, v in network.state_dict().items()}
    if expected != {k: list(v.shape) for k, v in files.weights.items()}:
        raise ModelDirError(f"{files.path}: the weights do not fit the model config.json "
                            "describes (names or shapes differ)")
    load_weights(network, files.weights)
    network.eval()
    return network


def export_model(model_dir: str | Path | ModelFiles, tolerance: float = 1e-3) -> dict:
    """Write the inference export of a model directory into ``DIR/inference`` and check that
    each graph gives the network's scores (max absolute difference within ``tolerance``) on
    random texts of every length up to ``max_len``: the Paddle Inference graph (required) and,
    with ONNX Runtime and paddle2onnx, the ONNX graph (left out, with the reason in
    ``onnx_skipped``, when it cannot be made or does not match). Returns the export info."""
    from newsclf.model.inference import (InferenceEngine, OnnxEngine, onnx_runtime_installed,
                                         predict_scores)

    files = model_dir if isinstance(model_dir, ModelFiles) else load_model_dir(model_dir)
    _refuse_to_replace_foreign_files(files.path)
    network = load_network(files)
    spec = files.spec
    rng = np.random.RandomState(0)
    probe = [rng.randint(2, spec.vocab_size, size=(length, spec.n_features)).astype(np.int64)
             for length in range(1, spec.max_len + 1)]
    target = files.path / EXPORT_DIR
    staging, retired = (files.path / f".{EXPORT_DIR}-{secrets.token_hex(EXPORT_TOKEN_BYTES)}"
                        for _ in range(2))
    try:
        staging.mkdir(0o777)  # the umask applies, as to every file newsclf writes
    except OSError as exc:
        raise ModelDirError(f"{files.path}: cannot write the inference export into it "
                            f"({exc.strerror}); the model directory must be writable") from None
    try:
        prefix = str(staging / EXPORT_PREFIX)
        _export_static(network, prefix, spec.n_features)
        expected = predict_scores(network, probe, 16)
        difference = float(np.abs(predict_scores(InferenceEngine(prefix), probe, 16)
                                  - expected).max())
        if not difference <= tolerance:
            raise ModelDirError(f"{files.path}: the exported graph's scores differ from the "
                                f"model's by {difference:.2g} (over {tolerance}); not exported")
        onnx_path = staging / ONNX_FILE
        onnx_skipped = (export_onnx(prefix, onnx_path) if onnx_runtime_installed()
                        else ONNX_RUNTIME_MISSING)
        onnx_difference = None
        if onnx_skipped is None:
            onnx_difference = float(np.abs(predict_scores(OnnxEngine(str(onnx_path)), probe, 16)
                                           - expected).max())
            if not onnx_difference <= tolerance:
                onnx_skipped = (f"the ONNX graph's scores differ from the model's by "
                                f"{onnx_difference:.2g} (over {tolerance})")
        if onnx_skipped is not None:
            onnx_path.unlink(missing_ok=True)
        info = {"model_fingerprint": files.fingerprint,
                # what releases before 0.2 check: they name format-1 exports by the weights
                "weights_sha256": files.info["files"]["model.safetensors"]["sha256"],
                "files": {p.name: sha256_file(p) for p in sorted(staging.iterdir())},
                "max_abs_logit_difference": difference, "checked_lengths": len(probe),
                "onnx_max_abs_logit_difference": onnx_difference, "onnx_skipped": onnx_skipped}
        write_json(staging / EXPORT_INFO, info)
        # renamed away whole, not deleted in place: a process loading the directory meanwhile
        # finds the old export whole, no export, or the new one whole
        if target.exists():
            target.rename(retired)
        staging.rename(target)
    finally:
        for leftover in (staging, retired):  # the old export may have been a file or a link
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
    return info


def _refuse_to_replace_foreign_files(directory: Path) -> None:
    """Refuse, naming them, to replace the export folder of the model in ``directory`` while
    it holds files newsclf did not write, or while a file or link of the user's is in its
    place: they would be deleted with it."""
    if not os.path.lexists(directory / EXPORT_DIR):
        return
    foreign = not_newsclfs(directory, [EXPORT_DIR],
                           (names_pattern(), ((names_pattern(EXPORT_DIR), EXPORT_LAYOUT),)))
    if foreign:
        raise NewsclfError(f"{directory}: holds files newsclf did not write "
                           f"({first_few(foreign)}), and "
                           f"exporting replaces the whole {EXPORT_DIR} folder: move them out "
                           "first")


def export_summary(info: dict) -> str:
    """What an export holds and how closely it matches the network, in one line."""
    checked = f"over {info['checked_lengths']} lengths"
    paddle_part = (f"Paddle Inference graph (max score difference "
                   f"{info['max_abs_logit_difference']:.1e} {checked})")
    if info.get("onnx_skipped"):
        return f"{paddle_part}; no ONNX graph: {info['onnx_skipped']}"
    return (f"ONNX graph (max score difference {info['onnx_max_abs_logit_difference']:.1e}) and "
            + paddle_part)
