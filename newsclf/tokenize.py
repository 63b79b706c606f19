"""Text normalization and tokenization (jieba words, characters, or both).

A tokenizer turns one text into a sequence of positions; each position carries one or more
feature strings that the vocabulary maps to ids:

- ``word``: one position per jieba word, feature ``w:<word>``;
- ``char``: one position per character, feature ``c:<char>``;
- ``mixed``: one position per character with three features: the character ``c:``, the
  character bigram starting there ``b:``, and the jieba word the character belongs to ``w:``.
  The model sums their embeddings, so every position sees its word and its local context.

The characters are those of the normalized text (:func:`normalize`) without its spaces, the
words jieba's of it: ``jieba.Tokenizer().lcut(text)`` (accurate mode, HMM on), spaces dropped.
Without a user dictionary the words come from rjieba (jieba's dictionary and HMM in Rust, many
times faster), where it differs from jieba redone the jieba way, so they are jieba's to the
token (:class:`_RjiebaWords`). With a user dictionary, or without rjieba installed, jieba
itself segments: rjieba cannot take a user dictionary the way jieba loads it (jieba estimates
a missing frequency its own way, counts a re-listed word's frequency twice in its total, and
keeps the words of frequency 0 out of its word graph and apart from its HMM's words).

Training reads a user dictionary with :func:`read_user_dictionary`, which refuses the lines
jieba would misread and writes the others the one way jieba reads them, and the model directory
keeps that text; a model directory's copy is loaded as it is, so a model segments as it did when
it was trained.
"""

from __future__ import annotations

import functools
import io
import logging
import operator
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.spec import FEATURES_PER_TOKEN, TOKENIZERS

_WHITESPACE = re.compile(r"\s+")
_END = "</s>"
_REMOVED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn")


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower-case, no control or zero-width characters,
    whitespace collapsed to single spaces and stripped."""
    if _plain_text().fullmatch(text):
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _REMOVED_CATEGORIES
    )
    return _WHITESPACE.sub(" ", text).strip()


@functools.lru_cache(maxsize=None)
def _plain_text() -> re.Pattern:
    """Matches the text :func:`normalize` only lower-cases and whose spaces it only collapses:
    characters, of the blocks most news text is written in, that NFKC keeps as they are (no
    decomposition, not combining), that are kept (see ``_REMOVED_CATEGORIES``), that are no
    whitespace but the space, and that lower-case to such a character. None of them is the
    second of two characters NFKC composes (tests/test_segmentation.py checks it), so NFKC
    keeps a text of them as it is."""
    candidates = [chr(code) for block in (range(0x20, 0x7F), range(0xA0, 0x100),
                                          range(0x2000, 0x2800), range(0x3000, 0x3100),
                                          range(0x3400, 0xA000))
                  for code in block]
    kept = {ch for ch in candidates
            if not unicodedata.decomposition(ch) and not unicodedata.combining(ch)
            and unicodedata.normalize("NFKC", ch) == ch
            and unicodedata.category(ch) not in _REMOVED_CATEGORIES
            and (ch == " " or not ch.isspace())}
    plain = sorted(ch for ch in kept if ch.lower() in kept)
    ranges, start = [], 0
    for i in range(1, len(plain) + 1):
        if i == len(plain) or ord(plain[i]) != ord(plain[i - 1]) + 1:
            ranges.append(re.escape(plain[start]) + ("-" + re.escape(plain[i - 1])
                                                       if i - 1 > start else ""))
            start = i
    return re.compile("[" + "".join(ranges) + "]*")


# jieba 0.42's patterns: the blocks it segments with its dictionary (``jieba.re_han_default``),
# the characters its HMM step treats as Chinese (``jieba.finalseg.re_han``) and how that step
# splits anything else (``jieba.finalseg.re_skip``).
_JIEBA_BLOCK = re.compile(r"([\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+)")
_NON_HAN_PAIR = re.compile(r"[^\u4E00-\u9FD5]{2}")
_JIEBA_HMM_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")


@dataclass(frozen=True)
class UserDictionary:
    """A jieba user dictionary as training reads it (:func:`read_user_dictionary`): ``text`` is
    what the model directory keeps, ``source`` the file it was read from."""

    source: str
    text: str


# jieba 0.42's reading of a user dictionary line (``jieba.re_userdict``), stripped
_JIEBA_USER_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")
_FREQUENCY = re.compile(r"[0-9]+")
_TAG = re.compile(r"[a-z]+")


def read_user_dictionary(path: str | Path) -> UserDictionary:
    """The jieba user dictionary at ``path`` (UTF-8, one ``word [freq] [tag]`` per line) as
    training uses it and the model directory keeps it: each line's fields separated by one
    space, the only separator jieba knows (it takes a tab-separated line, common in dictionaries
    exported from other tools, for one word with tabs in it, which no text holds), and each word
    normalized as texts are (:func:`normalize`: a text's ``A股`` is segmented as ``a股``).

    A line jieba would misread is refused with its line: a word with a space in it (jieba cuts
    texts at spaces, so no text has such a word), a frequency that is not a whole number, a tag
    that is not lower-case letters, a tag before the frequency.
    """
    path = Path(path)
    _check_user_dict_path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise NewsclfError(f"{path}: cannot read the user dictionary ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise NewsclfError(f"{path}: the user dictionary is not UTF-8; save it as UTF-8") from None
    lines = []
    for number, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if fields:
            lines.append(_user_dictionary_line(fields, line, f"{path}:{number}"))
    return UserDictionary(str(path), "".join(line + "\n" for line in lines))


def _user_dictionary_line(fields: list[str], line: str, where: str) -> str:
    """A user dictionary line as jieba reads it, from its whitespace-separated ``fields``."""
    word, rest = normalize(fields[0]), fields[1:]
    kinds = ["freq" if _FREQUENCY.fullmatch(field) else "tag" if _TAG.fullmatch(field)
             else None for field in rest]
    if kinds in ([], ["freq"], ["tag"], ["freq", "tag"]) and word and " " not in word:
        return " ".join([word, *rest])
    if not word:
        raise NewsclfError(f"{where}: the word {fields[0]!r} is only invisible characters; "
                           "delete the line or write the word")
    for field, kind in zip(rest, kinds):
        if kind is None and _is_number(field):
            problem = f"the frequency {field!r} is not a whole number"
            break
        if kind is None and field.isascii() and field.isalpha():
            problem = f"the tag {field!r} is not in lower-case letters"
            break
    else:
        problem = (f"{rest[0]!r} comes before the frequency (a tag goes after it, and a word "
                   "cannot hold a space)" if kinds == ["tag", "freq"] else
                   "a word cannot hold a space (jieba cuts texts at spaces)")
    misread = _JIEBA_USER_LINE.match(line.strip()).group(1)
    raise NewsclfError(f"{where}: {problem}, so jieba would take {misread!r} for the word; "
                       "write 'word [freq] [tag]', e.g. '券商板块 100 n'")


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _check_user_dict_path(path: Path) -> None:
    if path.is_dir():
        raise NewsclfError(f"{path}: is a directory, not a user dictionary; give the "
                           "dictionary's file (UTF-8, one 'word [freq] [tag]' per line)")
    if not path.is_file():
        raise NewsclfError(f"{path}: user dictionary not found")


class _JiebaWords:
    """jieba's words of a text, whitespace dropped, by jieba itself, with the user dictionary
    at a path (a model directory's copy, loaded as jieba reads it) or one training read."""

    def __init__(self, user_dict: str | UserDictionary | None):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        segmenter = jieba.Tokenizer()
        segmenter.initialize()
        if isinstance(user_dict, UserDictionary):
            segmenter.load_userdict(io.BytesIO(user_dict.text.encode("utf-8")))
        elif user_dict:
            path = Path(user_dict)
            _check_user_dict_path(path)
            try:
                segmenter.load_userdict(str(path))
            except Exception as exc:  # jieba raises bare ValueErrors on bad lines
                raise NewsclfError(f"{path}: cannot load user dictionary ({exc}); "
                                   "expected lines 'word [freq] [tag]' in UTF-8") from None
        self._lcut = segmenter.lcut

    def __call__(self, text: str) -> list[str]:
        return [word for word in self._lcut(text) if not word.isspace()]


class _RjiebaWords:
    """jieba's words of a text, whitespace dropped, computed with rjieba (jieba-rs: jieba's
    dictionary, word graph and HMM in Rust). rjieba alone differs from jieba twice:

    - jieba segments each block of Chinese characters, ASCII letters, digits and ``+#&._%-``
      with its dictionary and yields any other character alone; rjieba's blocks also take in
      Han characters outside jieba's range (``㐀``, ``鿖``, ``𠀀``). So the text is cut into
      jieba's blocks here, and rjieba segments one block at a time.
    - The characters left between dictionary words go to the HMM step, which splits a run of
      non-Chinese characters among them with a pattern: jieba's makes ``5.5`` ``kg`` of
      ``5.5kg`` and five tokens of ``s.h.e``, rjieba keeps more together. In a block (Chinese
      and ASCII characters only) such a run is a longest run of ASCII tokens that are not
      dictionary words, so each is joined and split again with jieba's pattern (which leaves a
      single character alone). An ASCII dictionary word (``c#``, ``c++``) is never in a run: it
      always beats its characters, which are not words, in the word graph."""

    def __init__(self):
        import rjieba

        segmenter = rjieba.Jieba()  # not rjieba's shared instance, which anyone may add words to
        self._cut = segmenter.cut
        self._has_word = segmenter.has_word

    def __call__(self, text: str) -> list[str]:
        parts = _JIEBA_BLOCK.split(text)  # other characters, a block, other characters, ...
        words = _single_characters(parts[0])
        for i in range(1, len(parts), 2):
            block, others = parts[i], parts[i + 1]
            tokens = self._cut(block)
            # a run of two non-Chinese characters or more can be split differently
            words += self._resplit_hmm_runs(tokens) if _NON_HAN_PAIR.search(block) else tokens
            if others:
                words += _single_characters(others)
        return words

    def _resplit_hmm_runs(self, tokens: list[str]) -> list[str]:
        """The tokens of a block, each run of ASCII tokens that are not dictionary words split
        again as jieba's HMM step splits it."""
        words, run = [], []
        for token in tokens:
            if token.isascii() and not (len(token) > 1 and self._has_word(token)):
                run.append(token)
                continue
            if run:
                words += _jieba_hmm_split("".join(run))
                run = []
            words.append(token)
        if run:
            words += _jieba_hmm_split("".join(run))
        return words


def _single_characters(text: str) -> list[str]:
    """What jieba yields for characters outside its blocks: each alone, whitespace dropped."""
    return [ch for ch in text if not ch.isspace()]


def _jieba_hmm_split(run: str) -> list[str]:
    """How jieba's HMM step splits a run of characters that are not Chinese."""
    return [piece for piece in _JIEBA_HMM_SKIP.split(run) if piece]


_segmenters: dict = {}


def _segmenter(user_dict: str | UserDictionary | None):
    """One word segmenter per user dictionary and process: rjieba when there is no user
    dictionary and it is installed, jieba otherwise (see the module docstring)."""
    key = (user_dict if isinstance(user_dict, UserDictionary) else
           str(user_dict) if user_dict else None)
    if key not in _segmenters:
        if key is None:
            try:
                _segmenters[key] = _RjiebaWords()
            except ImportError:
                _segmenters[key] = _JiebaWords(None)
        else:
            _segmenters[key] = _JiebaWords(key)
    return _segmenters[key]


# Characters a text can be cut before without changing how the part before the cut tokenizes:
# jieba segments the runs between them independently, and NFKC never joins them to a neighbour.
_CUT_BEFORE = frozenset(" \t\n\r\u3000，。！？；：、,!?;:")


def text_pieces(text: str, size: int):
    """Consecutive pieces of ``text`` of about ``size`` characters, each ending just before a
    cut character (see ``_CUT_BEFORE``) where one comes within ``size`` more characters; a run
    longer than that without one is cut where it reaches ``2 * size``."""
    start = 0
    while len(text) - start > size:
        end = start + size
        limit = min(len(text), start + 2 * size)
        while end < limit and text[end] not in _CUT_BEFORE:
            end += 1
        yield text[start:end]
        start = end
    if start < len(text) or start == 0:
        yield text[start:]


# The prefix of each feature string, by mode: a feature is its prefix and its key (the word,
# the character, or the bigram of the character and the next one, ``</s>`` after the last).
_FEATURE_PREFIXES = {"word": ("w:",), "char": ("c:",), "mixed": ("c:", "b:", "w:")}


class Tokenizer:
    """Normalizes and tokenizes text in one of the modes ``word``, ``char`` or ``mixed``.

    With ``max_positions`` only as much of a long text is normalized and segmented as those
    positions need (pieces cut at punctuation or spaces, see :func:`text_pieces`), so a
    50-megabyte cell costs no more than a headline when the model keeps 64 positions.

    ``user_dict`` is the path of a jieba user dictionary, loaded as jieba reads it (a model
    directory's copy), or a :class:`UserDictionary` training read."""

    def __init__(self, mode: str = "mixed", user_dict: str | UserDictionary | None = None):
        if mode not in TOKENIZERS:
            raise NewsclfError(f"tokenizer must be word, char or mixed, not {mode!r}")
        self.mode = mode
        self.user_dict = user_dict
        self.n_features = FEATURES_PER_TOKEN[mode]
        self.feature_prefixes = _FEATURE_PREFIXES[mode]

    def words(self, text: str) -> list[str]:
        """jieba words of the normalized text, spaces dropped."""
        return _segmenter(self.user_dict)(normalize(text))

    def _positions(self, text: str) -> list[list[str]]:
        """Parallel lists with one entry per position: the words (``word``), the characters
        (``char``), or the characters and the word each belongs to (``mixed``)."""
        if self.mode == "word":
            return [self.words(text)]
        if self.mode == "char":
            return [list(normalize(text).replace(" ", ""))]
        words = self.words(text)
        return [list("".join(words)), [word for word in words for _ in word]]

    def _positions_of_pieces(self, text: str, max_positions: int):
        """Positions of ``text`` piece by piece (at least ``max_positions + 1`` per yield while
        the text lasts), so only what is needed is ever tokenized."""
        size = 4 * max_positions + 64
        for piece in text_pieces(text, size):
            yield self._positions(piece)

    def _head_positions(self, text: str, max_positions: int | None) -> list[list[str]]:
        if max_positions is None:
            return self._positions(text)
        head = None
        for positions in self._positions_of_pieces(text, max_positions):
            head = positions if head is None else _joined(head, positions)
            if len(head[0]) > max_positions:  # one more: the last kept position's bigram
                break
        return head

    def tokenize(self, text: str, max_positions: int | None = None) -> list[str]:
        """The readable token of each position (at most ``max_positions``): words in ``word``
        mode, characters otherwise."""
        return self._head_positions(text, max_positions)[0][:max_positions]

    def features(self, text: str, max_positions: int | None = None) -> list[tuple[str, ...]]:
        """The feature strings of each position, at most ``max_positions`` (see the module
        docstring)."""
        return _feature_strings(self.feature_prefixes, self.feature_keys(text, max_positions))

    def feature_keys(self, text: str, max_positions: int | None = None) -> list[list[str]]:
        """:meth:`features` by feature, as :meth:`Vocab.encode_keys
        <newsclf.vocab.Vocab.encode_keys>` takes them: for each of :attr:`feature_prefixes`,
        the key of each position, the feature string being the prefix and the key."""
        head = self._head_positions(text, max_positions)
        if max_positions is None or len(head[0]) <= max_positions:
            return self._feature_keys(head, None)
        return self._feature_keys([column[:max_positions] for column in head],
                                  head[0][max_positions])

    def iter_feature_windows(self, text: str, window: int):
        """The features of all of ``text`` as consecutive windows of ``window`` positions (the
        last may be shorter; an empty text gives one empty window), tokenized piece by piece so
        memory stays flat in the text's length."""
        pending = None
        for positions in self._positions_of_pieces(text, window):
            pending = positions if pending is None else _joined(pending, positions)
            while len(pending[0]) > window:
                keys = self._feature_keys([column[:window] for column in pending],
                                          pending[0][window])
                yield _feature_strings(self.feature_prefixes, keys)
                pending = [column[window:] for column in pending]
        yield _feature_strings(self.feature_prefixes, self._feature_keys(pending, None))

    def _feature_keys(self, positions: list[list[str]], following: str | None):
        """The feature keys of ``positions``; ``following`` is the first token after them, if
        any."""
        if self.mode != "mixed":
            return positions
        chars, words = positions
        bigrams = list(map(operator.add, chars, chars[1:]))
        if chars:
            bigrams.append(chars[-1] + (_END if following is None else following))
        return [chars, bigrams, words]


def _joined(positions: list[list[str]], more: list[list[str]]) -> list[list[str]]:
    """``positions`` with ``more`` appended (in place)."""
    for column, further in zip(positions, more):
        column += further
    return positions


def _feature_strings(prefixes, keys: list[list[str]]) -> list[tuple[str, ...]]:
    return list(zip(*([prefix + key for key in column] for prefix, column in zip(prefixes, keys))))
