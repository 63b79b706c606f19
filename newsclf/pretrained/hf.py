"""A BERT-family checkpoint in Hugging Face's layout, read from a directory (``--teacher DIR``):
``config.json``, the weights in ``model.safetensors`` (or shards listed by
``model.safetensors.index.json``) and the tokenizer (``tokenizer.json``, or a WordPiece
``vocab.txt`` with ``tokenizer_config.json``), as a :class:`~.encoder.PretrainedEncoder` that
the teacher fine-tunes as it does e5 (``bert-base-chinese``, ``hfl/rbt3``,
``hfl/chinese-roberta-wwm-ext``: BERT models; RoBERTa and XLM-R ones too)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from newsclf.errors import NewsclfError
from newsclf.pretrained.e5file import INSTALL_HINT, EncoderSizes

MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
WEIGHTS, WEIGHTS_INDEX = "model.safetensors", "model.safetensors.index.json"
# the parts of a Hugging Face BERT layer, as newsclf's EncoderLayer names them
_LINEARS = {"attention.self.query": "self_attn.q_proj", "attention.self.key": "self_attn.k_proj",
            "attention.self.value": "self_attn.v_proj",
            "attention.output.dense": "self_attn.out_proj", "intermediate.dense": "linear1",
            "output.dense": "linear2"}
_NORMS = {"attention.output.LayerNorm": "norm1", "output.LayerNorm": "norm2"}


class HFEncoder:
    """The checkpoint in ``directory``: its sizes and tokenizer, read at once (a directory that
    does not fit is refused here, before any training), and its Paddle network, built on demand
    for the pieces of the texts it is given (the interface of :class:`~.encoder.E5`)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        config = self._config()
        self.model_type = config.get("model_type")
        if self.model_type not in MODEL_TYPES:
            raise NewsclfError(f"{self.directory}: a {self.model_type or 'model of no type'} "
                               f"checkpoint; --teacher reads {', '.join(MODEL_TYPES)} models")
        if config.get("hidden_act", "gelu") != "gelu":
            raise NewsclfError(f"{self.directory}: activation {config['hidden_act']!r}; "
                               "--teacher reads models with gelu")
        # transformers' default where the config names none: 1 for RoBERTa and XLM-R
        self.pad = int(config.get("pad_token_id", 0 if self.model_type == "bert" else 1) or 0)
        # RoBERTa's positions start after its padding id
        self.position_offset = self.pad + 1 if self.model_type != "bert" else 0
        try:
            self.sizes = EncoderSizes(
                int(config["hidden_size"]), int(config["num_hidden_layers"]),
                int(config["num_attention_heads"]), int(config["intermediate_size"]),
                int(config["vocab_size"]),
                int(config["max_position_embeddings"]) - self.position_offset,
                int(config.get("type_vocab_size", 2)), float(config.get("layer_norm_eps", 1e-12)))
        except (KeyError, TypeError, ValueError) as exc:
            raise NewsclfError(f"{self.directory / 'config.json'}: no usable {exc} "
                               "(a BERT-family config.json was expected)") from None
        self.name = str(config.get("_name_or_path") or self.directory.name)
        self.weight_files = self._weight_files()
        self.tokenizer = self._tokenizer()
        # XLM-R's SentencePiece has the lone word start e5's has; WordPiece has none
        self.filler = (self.tokenizer.token_to_id("\u2581") if self.model_type == "xlm-roberta"
                       else None)

    def check_weights(self) -> None:
        """Refuse, reading the weight files' headers only, weights that are missing, that are
        not safetensors or that lack a tensor the network needs."""
        from safetensors import safe_open

        names = set()
        for path in self.weight_files:
            try:
                with safe_open(str(path), framework="np") as weights:
                    names.update(weights.keys())
            except FileNotFoundError:
                raise NewsclfError(f"{path}: missing (the weights index names it)") from None
            except Exception as exc:  # safetensors raises its own error types
                raise NewsclfError(f"{path}: not readable safetensors weights "
                                   f"({exc})") from None
        prefix = self._prefix(names)
        for name in self._needed():
            if not self._present(prefix, name, names):
                raise NewsclfError(f"{self.directory}: the weights have no {prefix + name}")

    def _needed(self) -> list[str]:
        needed = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                  "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        for layer in range(self.sizes.layers):
            for part in (*_LINEARS, *_NORMS):
                needed += [f"encoder.layer.{layer}.{part}.weight",
                           f"encoder.layer.{layer}.{part}.bias"]
        return needed

    @staticmethod
    def _present(prefix: str, name: str, names) -> str | None:
        """The stored name of ``name`` (``LayerNorm.gamma``/``beta`` in older checkpoints)."""
        for each in (name, name.replace(".weight", ".gamma").replace(".bias", ".beta")):
            if prefix + each in names:
                return prefix + each
        return None

    def _prefix(self, names) -> str:
        prefix = next((name[:-len("embeddings.word_embeddings.weight")] for name in names
                       if name.endswith("embeddings.word_embeddings.weight")), None)
        if prefix is None:
            raise NewsclfError(f"{self.directory}: the weights hold no word embeddings "
                               "(embeddings.word_embeddings.weight)")
        return prefix

    def _config(self) -> dict:
        path = self.directory / "config.json"
        if not self.directory.is_dir():
            raise NewsclfError(f"{self.directory}: no such directory (--teacher takes none, e5 "
                               "or the directory of a Hugging Face BERT-family model)")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NewsclfError(f"{self.directory}: not a Hugging Face model directory (no "
                               "config.json)") from None
        except (OSError, ValueError) as exc:
            raise NewsclfError(f"{path}: not readable JSON ({exc})") from None
        if not isinstance(config, dict):
            raise NewsclfError(f"{path}: not a model configuration (a JSON object)")
        return config

    def _weight_files(self) -> list[Path]:
        single, index = self.directory / WEIGHTS, self.directory / WEIGHTS_INDEX
        if single.is_file():
            return [single]
        if index.is_file():
            try:
                names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                                   .values()))
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise NewsclfError(f"{index}: not a weights index ({exc})") from None
            return [self.directory / name for name in names]
        if any(self.directory.glob("*.bin")) or any(self.directory.glob("*.pt")):
            raise NewsclfError(
                f"{self.directory}: holds PyTorch weights only; save them as {WEIGHTS} (with "
                "transformers: AutoModel.from_pretrained(DIR).save_pretrained(DIR, "
                "safe_serialization=True))")
        raise NewsclfError(f"{self.directory}: no {WEIGHTS}")

    def _tokenizer(self):
        try:
            from tokenizers import Tokenizer
            from tokenizers.implementations import BertWordPieceTokenizer
        except ImportError:
            raise NewsclfError(f"--teacher DIR needs the tokenizers package: "
                               f"{INSTALL_HINT}") from None
        whole, vocab = self.directory / "tokenizer.json", self.directory / "vocab.txt"
        settings_path = self.directory / "tokenizer_config.json"
        if not whole.is_file() and not vocab.is_file():
            raise NewsclfError(f"{self.directory}: no tokenizer (tokenizer.json or vocab.txt)")
        read = whole if whole.is_file() else settings_path
        try:
            if whole.is_file():
                tokenizer = Tokenizer.from_file(str(whole))
            else:
                settings = (json.loads(settings_path.read_text(encoding="utf-8"))
                            if settings_path.is_file() else {})
                read = vocab
                tokenizer = BertWordPieceTokenizer(
                    str(vocab), lowercase=settings.get("do_lower_case", True),
                    strip_accents=settings.get("strip_accents"),
                    handle_chinese_chars=settings.get("tokenize_chinese_chars", True))
        except Exception as exc:  # tokenizers raises plain Exceptions for a damaged file
            raise NewsclfError(f"{read}: not a readable tokenizer file ({exc})") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.sizes.max_positions)
        return tokenizer

    def identity(self) -> str:
        """The hash of the files that make this checkpoint: its configuration, tokenizer and
        weights (part of the teacher cache's key)."""
        digest = hashlib.sha256()
        for name in ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json"):
            path = self.directory / name
            digest.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
        for path in self.weight_files:
            with path.open("rb") as stream:
                digest.update(path.name.encode())
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    def piece_ids(self, text: str) -> list[int]:
        """The token ids of ``text`` as the checkpoint's tokenizer gives them ([CLS], the
        pieces, [SEP]), the first ``max_position_embeddings``."""
        return self.tokenizer.encode(text).ids

    def content_ids(self, text: str) -> list[int]:
        """The pieces of ``text`` alone (no [CLS] or [SEP])."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def input_embeddings(self, rows: np.ndarray) -> np.ndarray:
        """The token embeddings of ``rows`` ``[len(rows), hidden]``."""
        tensors = self._tensors()
        return tensors[self._prefix(tensors) + "embeddings.word_embeddings.weight"][rows]

    def network(self, piece_lists: list, dropout: float = 0.0):
        """The network for texts of ``piece_lists``, and the map from token id to its row."""
        from newsclf.pretrained.encoder import network_of

        return network_of(self.sizes, self.weights, piece_lists, self.pad, dropout)

    def weights(self, rows: np.ndarray) -> dict:
        """The :class:`~.encoder.PretrainedEncoder` weights for the embedding rows ``rows``."""
        self.check_weights()
        tensors = self._tensors()
        prefix = self._prefix(tensors)

        def get(name: str) -> np.ndarray:
            return tensors[self._present(prefix, name, tensors)]

        types = self._present(prefix, "embeddings.token_type_embeddings.weight", tensors)

        start, stop = self.position_offset, self.position_offset + self.sizes.max_positions
        weights = {"word_embeddings.weight": get("embeddings.word_embeddings.weight")[rows],
                   "position_embeddings.weight":
                       get("embeddings.position_embeddings.weight")[start:stop],
                   # a model without token types adds nothing in their place
                   "token_type": tensors[types][0] if types
                   else np.zeros(self.sizes.hidden, np.float32),
                   "embedding_norm.weight": get("embeddings.LayerNorm.weight"),
                   "embedding_norm.bias": get("embeddings.LayerNorm.bias")}
        for layer in range(self.sizes.layers):
            theirs, ours = f"encoder.layer.{layer}.", f"layers.{layer}."
            for part, name in _LINEARS.items():  # torch keeps [out, in], paddle [in, out]
                weights[ours + name + ".weight"] = get(theirs + part + ".weight").T.copy()
                weights[ours + name + ".bias"] = get(theirs + part + ".bias")
            for part, name in _NORMS.items():
                weights[ours + name + ".weight"] = get(theirs + part + ".weight")
                weights[ours + name + ".bias"] = get(theirs + part + ".bias")
        return weights

    def _tensors(self) -> dict:
        """Every weight as float32 numpy."""
        tensors = {}
        for path in self.weight_files:
            tensors.update(_float32_tensors(path))
        return tensors


# safetensors' float types, as numpy reads their bytes (bfloat16: the top half of a float32)
_FLOAT_TYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def _float32_tensors(path: Path) -> dict:
    """The tensors of a safetensors file as float32 arrays. Its layout (an 8-byte header
    length, a JSON header of each tensor's type, shape and byte range, the data) is read here
    because safetensors' numpy reader has no bfloat16, the type many checkpoints are saved in."""
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
        length = int(data[:8].view("<u8")[0])
        header = json.loads(bytes(data[8:8 + length]).decode("utf-8"))
        start = 8 + length
        tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            kind = _FLOAT_TYPES.get(info["dtype"])
            if kind is None:
                raise ValueError(f"tensor {name} is {info['dtype']}, not a float type")
            begin, end = info["data_offsets"]
            values = data[start + begin:start + end].view(np.dtype(kind).newbyteorder("<"))
            if info["dtype"] == "BF16":
                values = (values.astype(np.uint32) << 16).view(np.float32)
            tensors[name] = values.astype(np.float32).reshape(info["shape"])
        return tensors
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise NewsclfError(f"{path}: not readable safetensors weights ({exc})") from None
