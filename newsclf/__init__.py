"""newsclf: Chinese news topic classification with a Transformer encoder (PaddlePaddle).

The public API: :func:`train` (one call, the arguments of ``newsclf train``), :class:`Predictor`
(a trained model directory, pipeline-style results), :func:`predict_file` (label a file),
:func:`read_labelled` and :class:`LabelledData` (labelled files of any layout),
:class:`TextClassifier` (the same models as a scikit-learn estimator), :class:`TrainConfig`
(training settings), :func:`evaluate` and :class:`EvaluationResult`, and the errors newsclf
raises for problems the user can fix. Everything loads on first use, so ``import newsclf`` is
fast and changes nothing in the process.
"""

__version__ = "0.2.0"

from newsclf.errors import DataError, ModelDirError, NewsclfError  # noqa: E402
from newsclf.config import TrainConfig  # noqa: E402

__all__ = ["train", "Predictor", "TextClassifier", "TrainConfig", "evaluate", "EvaluationResult",
           "predict_file", "read_labelled", "LabelledData", "NewsclfError", "DataError",
           "ModelDirError", "__version__"]

_LAZY = {"train": "newsclf.api", "Predictor": "newsclf.predictor",
         "TextClassifier": "newsclf.estimator", "evaluate": "newsclf.evaluation",
         "EvaluationResult": "newsclf.evaluation", "predict_file": "newsclf.predict",
         "read_labelled": "newsclf.datafiles", "LabelledData": "newsclf.datafiles"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'newsclf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
