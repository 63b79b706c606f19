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
        self.pad = int(config.get("pad_token_id") or 0)
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
        if whole.is_file():
            tokenizer = Tokenizer.from_file(str(whole))
        elif vocab.is_file():
            settings_path = self.directory / "tokenizer_config.json"
            settings = (json.loads(settings_path.read_text(encoding="utf-8"))
                        if settings_path.is_file() else {})
            tokenizer = BertWordPieceTokenizer(
                str(vocab), lowercase=settings.get("do_lower_case", True),
                strip_accents=settings.get("strip_accents"),
                handle_chinese_chars=settings.get("tokenize_chinese_chars", True))
        else:
            raise NewsclfError(f"{self.directory}: no tokenizer (tokenizer.json or vocab.txt)")
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.sizes.max_positions)
        return tokenizer

    def identity(self) -> str:
        """What tells this checkpoint from another (part of the teacher cache's key)."""
        digest = hashlib.sha256((self.directory / "config.json").read_bytes())
        for path in self.weight_files:
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
        return digest.hexdigest()

    def piece_ids(self, text: str) -> list[int]:
        """The token ids of ``text`` as the checkpoint's tokenizer gives them ([CLS], the
        pieces, [SEP]), the first ``max_position_embeddings``."""
        return self.tokenizer.encode(text).ids

    filler = None  # no piece of a WordPiece vocabulary says nothing

    def content_ids(self, text: str) -> list[int]:
        """The pieces of ``text`` alone (no [CLS] or [SEP])."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def input_embeddings(self, rows: np.ndarray) -> np.ndarray:
        """The token embeddings of ``rows`` ``[len(rows), hidden]``."""
        return self.weights(rows)["word_embeddings.weight"]

    def network(self, piece_lists: list, dropout: float = 0.0):
        """The network for texts of ``piece_lists``, and the map from token id to its row."""
        from newsclf.pretrained.encoder import network_of

        return network_of(self.sizes, self.weights, piece_lists, self.pad, dropout)

    def weights(self, rows: np.ndarray) -> dict:
        """The :class:`~.encoder.PretrainedEncoder` weights for the embedding rows ``rows``."""
        tensors = self._tensors()
        prefix = next((name[:-len("embeddings.word_embeddings.weight")] for name in tensors
                       if name.endswith("embeddings.word_embeddings.weight")), None)
        if prefix is None:
            raise NewsclfError(f"{self.directory}: the weights hold no word embeddings "
                               "(embeddings.word_embeddings.weight)")

        def get(name: str) -> np.ndarray:
            for each in (name, name.replace(".weight", ".gamma").replace(".bias", ".beta")):
                if prefix + each in tensors:
                    return np.asarray(tensors[prefix + each], dtype=np.float32)
            raise NewsclfError(f"{self.directory}: no weight {prefix + name}")

        start, stop = self.position_offset, self.position_offset + self.sizes.max_positions
        weights = {"word_embeddings.weight": get("embeddings.word_embeddings.weight")[rows],
                   "position_embeddings.weight":
                       get("embeddings.position_embeddings.weight")[start:stop],
                   "token_type": get("embeddings.token_type_embeddings.weight")[0],
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
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        tensors = {}
        for path in self.weight_files:
            try:
                tensors.update(load_file(path))
            except (OSError, SafetensorError, TypeError, ValueError) as exc:
                raise NewsclfError(f"{path}: not readable safetensors weights "
                                   f"({exc})") from None
        return tensors
