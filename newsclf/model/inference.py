"""Running a network on encoded texts: length-bucketed batching, the two engines that run an
exported graph (ONNX Runtime, which needs no Paddle, and Paddle Inference), and softmax over
the scores. numpy in, numpy out."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np

from newsclf.data import length_sorted_batches, pad_batch


def predict_scores(model, encoded, batch_size: int = 256) -> np.ndarray:
    """Scores ``[n, n_classes]`` for encoded texts, in input order (``softmax`` of a row is the
    text's class probabilities); batches texts of similar length together so little is spent on
    padding. ``model`` is a ``paddle.nn.Layer`` of :mod:`newsclf.model.layers` or any callable
    mapping an int64 batch ``[batch, length, n_features]`` to scores."""
    paddle = sys.modules.get("paddle")  # a network can only exist once Paddle is imported
    if paddle is not None and isinstance(model, paddle.nn.Layer):
        was_training = model.training
        model.eval()
        try:
            with paddle.no_grad():
                return predict_scores(lambda ids: model(paddle.to_tensor(ids)).numpy(),
                                      encoded, batch_size)
        finally:
            if was_training:
                model.train()
    out = None
    for index in length_sorted_batches([len(ids) for ids in encoded], batch_size):
        scores = model(pad_batch([encoded[i] for i in index]))
        if out is None:
            out = np.empty((len(encoded), scores.shape[1]), dtype=np.float32)
        out[index] = scores
    return out


class InferenceEngine:
    """A Paddle Inference predictor on an exported graph (oneDNN on CPU): a callable from an
    int64 batch to scores, several times faster than the dynamic graph."""

    def __init__(self, prefix: str, threads: int = 1):
        from newsclf.runtime import configure_paddle

        configure_paddle()
        import paddle.inference as inference

        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_gpu()
        config.enable_mkldnn()
        config.set_cpu_math_library_num_threads(threads)
        config.disable_glog_info()
        config.switch_ir_optim(True)
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        self.input.reshape(list(ids.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(ids))
        self.predictor.run()
        return self.output.copy_to_cpu()


def onnx_runtime_installed() -> bool:
    """Whether ONNX Runtime can be imported (a dependency of newsclf, unless removed)."""
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxEngine:
    """An ONNX Runtime session on an exported ``.onnx`` graph: a callable from an int64 batch to
    scores. It starts in a fraction of a second and never imports Paddle."""

    def __init__(self, path: str, threads: int = 1):
        from newsclf.runtime import signals_held_back

        # a signal handled inside the import would leave ONNX Runtime half-initialized and
        # surface as its ImportError; it is handled once the import is over instead
        with signals_held_back():
            import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no notes about unused initializers
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(ids)})[0]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a numpy array of scores."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
