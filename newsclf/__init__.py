"""newsclf: Chinese news topic classification with a Transformer encoder (PaddlePaddle).

Paddle loads on first use (``Predictor``, training), so ``import newsclf`` stays fast.
"""

__version__ = "0.1.0"

from newsclf.errors import DataError, ModelDirError, NewsclfError  # noqa: E402
from newsclf.config import TrainConfig  # noqa: E402
from newsclf.evaluate import EvaluationResult, evaluate  # noqa: E402

__all__ = ["Predictor", "TrainConfig", "evaluate", "EvaluationResult", "NewsclfError", "DataError", "ModelDirError",
           "__version__"]


def __getattr__(name):
    if name == "Predictor":
        from newsclf.predict import Predictor
        return Predictor
    raise AttributeError(f"module 'newsclf' has no attribute {name!r}")
