"""Prediction: the :class:`Predictor` that loads a model directory and labels texts, the
inference export (``newsclf export``) it runs on when present, and labelling whole files."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.data import encode_texts
from newsclf.errors import DataError, ModelDirError, NewsclfError
from newsclf.modeldir import ModelFiles, load_model_dir
from newsclf.tokenize import Tokenizer, normalize

LONG_TEXT_MODES = ("truncate", "chunk")
BACKENDS = ("auto", "inference", "dynamic")
EXPORT_DIR, EXPORT_PREFIX, EXPORT_INFO = "inference", "model", "export.json"


class Predictor:
    """A trained model, ready to classify texts.

    >>> predictor = Predictor.from_dir("model")
    >>> predictor.predict(["央行宣布下调存款准备金率"])
    [{'label': '财经', 'score': 0.97}]
    """

    def __init__(self, files: ModelFiles, backend: str = "auto", threads: int | None = None):
        from newsclf.model import build_model, paddle

        self.files = files
        self.config = files.config
        self.vocab = files.vocab
        self.classes_ = np.array(files.labels, dtype=object)
        self.tokenizer = Tokenizer(self.config.tokenizer, files.user_dict)
        if self.tokenizer.n_features != files.n_features:
            raise ModelDirError(f"{files.path}: config.json says {files.n_features} features per "
                                f"token, the {self.config.tokenizer!r} tokenizer makes "
                                f"{self.tokenizer.n_features}")
        self.model = build_model(self.config, len(self.vocab), len(files.labels))
        expected = {k: list(v.shape) for k, v in self.model.state_dict().items()}
        found = {k: list(v.shape) for k, v in files.weights.items()}
        if expected != found:
            raise ModelDirError(f"{files.path}: the weights do not fit the model config.json "
                                "describes (names or shapes differ)")
        self.model.set_state_dict({k: paddle.to_tensor(v) for k, v in files.weights.items()})
        self.model.eval()
        if backend not in BACKENDS:
            raise NewsclfError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.backend, self._forward = "dynamic", self.model
        if backend != "dynamic":
            problem = _export_problem(files)
            if problem is None:
                from newsclf.model import InferenceEngine

                prefix = str(files.path / EXPORT_DIR / EXPORT_PREFIX)
                threads = threads or min(4, os.cpu_count() or 1)
                self.backend, self._forward = "inference", InferenceEngine(prefix, threads)
            elif backend == "inference":
                raise ModelDirError(f"{files.path}: {problem}; run 'newsclf export --model "
                                    f"{files.path}'")

    @classmethod
    def from_dir(cls, path: str | Path, backend: str = "auto",
                 threads: int | None = None) -> "Predictor":
        """Load a model directory written by ``newsclf train``. ``backend="auto"`` runs on the
        Paddle Inference export when the directory has a current one, else on the dynamic
        graph; ``"inference"`` requires the export, ``"dynamic"`` ignores it. ``threads``: CPU
        threads of the inference engine (default: the machine's cores, at most 4)."""
        return cls(load_model_dir(path), backend, threads)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, truncated to the model's ``max_len``."""
        return encode_texts(self.tokenizer, self.vocab, texts, self.config.max_len)

    def predict_logits(self, texts: Sequence[str], batch_size: int = 256,
                       long_text: str = "truncate") -> np.ndarray:
        """Logits ``[n, n_classes]``. ``long_text="chunk"`` classifies a text longer than
        ``max_len`` by all of it: windows of ``max_len`` positions, logits averaged."""
        from newsclf.model import predict_logits

        texts = _as_list(texts)
        if long_text not in LONG_TEXT_MODES:
            raise NewsclfError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, "
                               f"not {long_text!r}")
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        if long_text == "truncate":
            return predict_logits(self._forward, self.encode(texts), batch_size)
        windows, owner = [], []
        size = self.config.max_len
        for i, ids in enumerate(encode_texts(self.tokenizer, self.vocab, texts, sys.maxsize)):
            for start in range(0, len(ids), size):
                windows.append(ids[start:start + size])
                owner.append(i)
        window_logits = predict_logits(self._forward, windows, batch_size)
        owner = np.asarray(owner)
        totals = np.zeros((len(texts), window_logits.shape[1]), dtype=np.float64)
        np.add.at(totals, owner, window_logits)
        return (totals / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256,
                      long_text: str = "truncate") -> np.ndarray:
        """Class probabilities ``[n, n_classes]``, columns in the order of ``classes_``."""
        from newsclf.model import softmax

        return softmax(self.predict_logits(texts, batch_size, long_text))

    def explain(self, text: str):
        """Tokens, attention weights and attention-rollout importance for one text (see
        :mod:`newsclf.explain`)."""
        from newsclf.explain import explain

        return explain(self, text)

    def predict(self, texts: Sequence[str], top_k: int | None = None, batch_size: int = 256,
                long_text: str = "truncate"):
        """For each text, in input order, ``{"label": name, "score": probability}``; with
        ``top_k=k``, a list of the k best such dicts, best first."""
        probabilities = self.predict_proba(texts, batch_size, long_text)
        k = 1 if top_k is None else max(1, min(int(top_k), len(self.classes_)))
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        rows = [[{"label": str(self.classes_[j]), "score": float(p[j])} for j in order]
                for p, order in zip(probabilities, best)]
        return [row[0] for row in rows] if top_k is None else rows


def _as_list(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
    return texts


# --- inference export ------------------------------------------------------------------------

def _export_problem(files: ModelFiles) -> str | None:
    """Why the directory's inference export cannot be used (None: it can)."""
    import json

    from newsclf.modeldir import WEIGHTS, sha256_file

    directory = files.path / EXPORT_DIR
    try:
        info = json.loads((directory / EXPORT_INFO).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no inference export"
    except ValueError:
        return f"{directory / EXPORT_INFO} is damaged"
    if info.get("weights_sha256") != files.info["files"][WEIGHTS]["sha256"]:
        return "its inference export is from other weights (stale)"
    for name, digest in info.get("files", {}).items():
        if not (directory / name).is_file() or sha256_file(directory / name) != digest:
            return f"its inference export file {name} is missing or damaged"
    return None


def export_model(model_dir: str | Path, tolerance: float = 1e-3) -> dict:
    """Write the Paddle Inference export of a model directory into ``DIR/inference`` and check
    that it gives the dynamic model's logits (max absolute difference within ``tolerance``) on
    random texts of every length up to ``max_len``. Returns the export info."""
    import shutil
    import tempfile

    from newsclf.model import InferenceEngine, export_static, predict_logits
    from newsclf.modeldir import WEIGHTS, sha256_file, write_json

    predictor = Predictor.from_dir(model_dir, backend="dynamic")
    files = predictor.files
    rng = np.random.RandomState(0)
    n_features = files.n_features
    probe = [rng.randint(2, len(predictor.vocab), size=(length, n_features)).astype(np.int64)
             for length in range(1, predictor.config.max_len + 1)]
    target = files.path / EXPORT_DIR
    staging = Path(tempfile.mkdtemp(dir=files.path, prefix=".inference-"))
    try:
        export_static(predictor.model, str(staging / EXPORT_PREFIX), n_features)
        engine = InferenceEngine(str(staging / EXPORT_PREFIX))
        difference = float(np.abs(predict_logits(engine, probe, 16)
                                  - predict_logits(predictor.model, probe, 16)).max())
        if not difference <= tolerance:
            raise ModelDirError(f"{files.path}: the exported graph's logits differ from the "
                                f"model's by {difference:.2g} (over {tolerance}); not exported")
        info = {"weights_sha256": files.info["files"][WEIGHTS]["sha256"],
                "files": {p.name: sha256_file(p) for p in sorted(staging.iterdir())},
                "max_abs_logit_difference": difference, "checked_lengths": len(probe)}
        write_json(staging / EXPORT_INFO, info)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


# --- labelling files ------------------------------------------------------------------------

def prediction_columns(classes, probabilities: np.ndarray, top_k: int = 1,
                       with_probabilities: bool = False) -> dict[str, np.ndarray]:
    """The columns newsclf adds to a table of texts: ``pred_label``, ``pred_score``; with
    ``top_k > 1`` ``top{i}_label``/``top{i}_score``; with probabilities ``prob_<class>``."""
    classes = np.asarray(classes, dtype=object)
    k = max(1, min(top_k, len(classes)))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(probabilities))[:, None]
    labels, scores = classes[order], probabilities[rows, order]
    columns = {"pred_label": labels[:, 0], "pred_score": scores[:, 0]}
    if k > 1:
        for i in range(k):
            columns[f"top{i + 1}_label"] = labels[:, i]
            columns[f"top{i + 1}_score"] = scores[:, i]
    if with_probabilities:
        for j, name in enumerate(classes):
            columns[f"prob_{name}"] = probabilities[:, j]
    return columns


def has_content(text: str) -> bool:
    """Whether anything is left of ``text`` after normalization (fast for ordinary text:
    a letter or digit always survives)."""
    return any(ch.isalnum() for ch in text) or bool(normalize(text))


def _label_frame(frame, text_column: str, classify, classes, top_k: int, with_probabilities: bool):
    """Add prediction columns and an ``error`` column to one chunk; rows whose text is empty
    after normalization get empty predictions and ``error = "empty text"``."""
    texts = frame[text_column].tolist()
    valid = np.array([has_content(t) for t in texts], dtype=bool)
    probabilities = np.zeros((len(texts), len(classes)), dtype=np.float32)
    if valid.any():
        probabilities[valid] = classify([t for t, ok in zip(texts, valid) if ok])
    for name, values in prediction_columns(classes, probabilities, top_k,
                                           with_probabilities).items():
        values = values.astype(object)
        values[~valid] = ""
        frame[name] = values
    frame["error"] = np.where(valid, "", "empty text")
    return frame


_worker_predictor = None


def _init_worker(model_dir: str, backend: str) -> None:
    global _worker_predictor
    _worker_predictor = Predictor.from_dir(model_dir, backend, threads=1)


def _worker_classify(texts, batch_size, long_text):
    return _worker_predictor.predict_proba(texts, batch_size, long_text)


def predict_file(model, input_path: str, output_path: str, *, text_column: str = "text",
                 fmt: str | None = None, encoding: str | None = None, top_k: int = 1,
                 probabilities: bool = False, batch_size: int = 256, chunk_size: int = 5000,
                 excel: bool = False, long_text: str = "truncate", workers: int | None = None,
                 progress: bool = True) -> dict:
    """Label every row of a CSV, TSV or text file and write all input columns plus the
    prediction columns, one output row per input row, in order.

    Streams in chunks (flat memory at any size); writes to a temporary file renamed at the end,
    so a failed run leaves nothing under ``output_path``. ``-`` reads standard input / writes
    standard output. ``workers > 1`` spreads tokenization and inference over processes;
    ``None`` uses one process per core (at most 4) for files of 50,000 rows or more, else one.
    Returns ``{"rows", "empty", "seconds"}``.
    """
    from tqdm.auto import tqdm

    from newsclf.data import iter_input_chunks

    predictor = model if isinstance(model, Predictor) else Predictor.from_dir(model)
    if top_k < 1:
        raise NewsclfError(f"top_k must be at least 1, got {top_k}")
    if workers is not None and workers < 1:
        raise NewsclfError(f"workers must be at least 1, got {workers}")
    if long_text not in LONG_TEXT_MODES:
        raise NewsclfError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, not {long_text!r}")
    classes = list(predictor.classes_)
    started = time.perf_counter()
    output_sep = "\t" if str(output_path).lower().endswith((".tsv", ".txt")) else ","
    output_encoding = "utf-8-sig" if excel else "utf-8"
    to_stdout = output_path == "-"
    if not to_stdout:
        target = Path(output_path)
        if target.is_dir():
            raise NewsclfError(f"{target}: is a directory; give an output file name")
        if not target.parent.is_dir():
            raise NewsclfError(f"{target.parent}: output folder does not exist")
        tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
        handle = open(tmp, "w", encoding=output_encoding, newline="")
    else:
        handle = sys.stdout
    expected_rows = _count_rows(input_path, fmt)
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if (expected_rows or 0) >= 50_000 else 1
    bar = tqdm(total=expected_rows, unit="row", disable=None if progress else True,
               file=sys.stderr, dynamic_ncols=True, desc="predict")
    pool = None
    rows = empty = 0
    try:
        if workers > 1:
            from newsclf.workers import start_pool

            pool = start_pool(workers, _init_worker, (str(predictor.files.path), predictor.backend))
        added = set(prediction_columns(classes, np.zeros((0, len(classes))), top_k, probabilities))
        chunks = _refuse_column_clashes(
            iter_input_chunks(input_path, fmt=fmt, text_column=text_column, encoding=encoding,
                              chunk_size=chunk_size), added | {"error"})

        def classify_here(texts):
            return predictor.predict_proba(texts, batch_size, long_text)

        def write(frame, column, classify):
            nonlocal rows, empty
            labelled = _label_frame(frame, column, classify, classes, top_k, probabilities)
            labelled.to_csv(handle, sep=output_sep, index=False, header=rows == 0,
                            lineterminator="\n", float_format="%.6f")
            rows += len(labelled)
            empty += int((labelled["error"] != "").sum())
            bar.update(len(labelled))

        pending = deque()  # chunks in flight, written strictly in input order
        for frame, column in chunks:
            if pool is None:
                pending.append((frame, column, classify_here))
            else:
                texts = [t for t in frame[column].tolist() if has_content(t)]
                future = pool.apply_async(_worker_classify, (texts, batch_size, long_text))
                pending.append((frame, column, lambda _texts, future=future: future.get()))
            while len(pending) > (2 * workers if pool else 0):
                write(*pending.popleft())
        while pending:
            write(*pending.popleft())
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        if not to_stdout:
            handle.close()
            tmp.replace(target)
    except BaseException:
        if not to_stdout:
            handle.close()
            tmp.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return {"rows": rows, "empty": empty, "seconds": time.perf_counter() - started}


def _refuse_column_clashes(chunks, added: set):
    """Refuse input whose columns would be overwritten by the prediction columns."""
    for frame, column in chunks:
        clash = sorted(added & set(frame.columns))
        if clash:
            raise DataError(f"the input already has column(s) {', '.join(clash)}; rename them, "
                            "newsclf writes its predictions there")
        yield frame, column


def _count_rows(path: str, fmt: str | None) -> int | None:
    """Approximate row count for the progress bar (newlines; header not counted)."""
    if path == "-" or not Path(path).is_file():
        return None
    from newsclf.data import detect_predict_format

    count = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return max(0, count - (0 if (fmt or detect_predict_format(path)) == "txt" else 1))
