"""e5's encoder layers on ONNX Runtime: the same sentence vectors as the Paddle network (the
graph is exported from it), faster on a CPU. The piece embeddings stay in numpy:
only the rows of a run's pieces are ever read (:mod:`.encoder`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class OnnxLayers:
    """A callable from (embedded pieces, mask) to pooled states on ONNX Runtime, exported from
    a :class:`~newsclf.pretrained.encoder.PretrainedEncoder`; :func:`onnx_layers` makes it."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])

    def __call__(self, embedded: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"embedded": embedded, "mask": mask})[0]


def onnx_layers(pooled_layers, hidden: int, threads: int) -> OnnxLayers | None:
    """``pooled_layers`` (a Paddle layer from embedded pieces ``[batch, length, hidden]`` and
    their mask to pooled states) on ONNX Runtime, or None when ONNX Runtime or paddle2onnx is
    missing or the conversion fails: the Paddle network computes the vectors then."""
    from paddle.static import InputSpec

    from newsclf.model.export import export_onnx, save_static
    from newsclf.model.inference import onnx_runtime_installed

    if not onnx_runtime_installed():
        return None
    with tempfile.TemporaryDirectory(prefix="newsclf-e5-") as folder:
        prefix, onnx_path = str(Path(folder) / "layers"), Path(folder) / "layers.onnx"
        try:
            save_static(pooled_layers, prefix, [
                InputSpec([None, None, hidden], "float32", name="embedded"),
                InputSpec([None, None], "bool", name="mask")])
            if export_onnx(prefix, onnx_path) is not None:
                return None
            return OnnxLayers(onnx_path, threads)
        except Exception:  # any failure of a converter: the Paddle graph is always there
            return None
