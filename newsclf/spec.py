"""The model description: everything prediction needs to rebuild a trained model.

A :class:`ModelSpec` names the tokenizer, the vocabulary and class counts and the network's
architecture. It is what ``config.json`` of a model directory holds under ``"model"``, apart
from the training settings (``training.json``), which are kept as a record and never needed to
load a model. The choices of each architecture option, and of the ways to run a model, are
listed here, once, for the training settings, the command line and the loader to share. Kept free of Paddle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from newsclf.errors import ModelDirError

TOKENIZERS = ("word", "char", "mixed")
POOLINGS = ("mean", "max", "mean_max", "attention", "cls")
POSITIONS = ("sinusoidal", "learned", "rotary", "relative")
RELATIVE_DISTANCE = 16  # --position relative: query-key distances beyond this share one bias
FEATURES_PER_TOKEN = {"word": 1, "char": 1, "mixed": 3}
# how a trained model can be run: its engines and its ways with texts longer than max_len
BACKENDS = ("auto", "onnx", "inference", "dynamic")
LONG_TEXT_MODES = ("truncate", "chunk", "chunk-mean")
# how `explain` scores tokens, and the steps of integrated gradients' path
EXPLAIN_METHODS = ("rollout", "occlusion", "integrated-gradients")
IG_STEPS = 32
# the HTTP service's default limits and batching (here, so `newsclf serve --help` needs no FastAPI)
SERVE_MAX_TEXTS, SERVE_MAX_CHARS, SERVE_MAX_WAIT_MS = 1_000, 100_000, 5.0
# windows of max_len positions one request may cost (a text is one, or with --long-text chunk
# one per max_len characters): a request the service can finish in seconds
SERVE_MAX_WINDOWS = 20_000
USER_DICT_FILE = "user_dict.txt"  # the jieba user dictionary's name inside a model directory


@dataclass(frozen=True)
class ModelSpec:
    """What a trained model is: tokenizer, sizes and architecture (not how it was trained)."""

    tokenizer: str
    max_len: int
    vocab_size: int
    n_classes: int
    d_model: int
    n_heads: int
    n_layers: int
    d_ff: int
    pre_ln: bool
    pooling: str
    position: str
    ensemble_size: int
    user_dict: str | None = None  # file name inside the model directory

    @property
    def n_features(self) -> int:
        """Feature ids per token position (the last axis of the model's input)."""
        return FEATURES_PER_TOKEN[self.tokenizer]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str) -> "ModelSpec":
        """Read and check a description; anything missing, unknown or invalid raises
        :class:`ModelDirError` naming ``source``."""
        if not isinstance(values, dict):
            raise ModelDirError(f"{source}: the model description is not a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        required = {f.name for f in fields(cls) if f.name != "user_dict"}
        missing = sorted(required - set(values))
        if unknown or missing:
            raise ModelDirError(f"{source}: model description has "
                                + "; ".join(part for part in (
                                    f"unknown entries {', '.join(unknown)}" if unknown else "",
                                    f"no {', '.join(missing)}" if missing else "") if part)
                                + "; the directory was edited or written by another program")
        spec = cls(**values)
        spec.check(source)
        return spec

    def check(self, source: str) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ModelDirError(f"{source}: invalid model description: {what}")

        for name in ("max_len", "vocab_size", "n_classes", "d_model", "n_heads", "n_layers",
                     "d_ff", "ensemble_size"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                 f"{name} must be a positive integer, not {value!r}")
        need(self.tokenizer in TOKENIZERS, f"tokenizer {self.tokenizer!r} is not one of "
                                           f"{', '.join(TOKENIZERS)}")
        need(self.pooling in POOLINGS, f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        need(self.position in POSITIONS,
             f"position {self.position!r} is not one of {', '.join(POSITIONS)}")
        need(isinstance(self.pre_ln, bool), f"pre_ln must be true or false, not {self.pre_ln!r}")
        need(self.d_model % self.n_heads == 0,
             f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        need(self.user_dict is None or isinstance(self.user_dict, str),
             f"user_dict must be a file name or null, not {self.user_dict!r}")
