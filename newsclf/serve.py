"""The HTTP service: a FastAPI app that labels texts with one loaded model, batching concurrent
requests into shared model calls.

``POST /predict`` answers like :meth:`Predictor.predict <newsclf.predictor.Predictor.predict>`;
``GET /health`` and ``GET /info`` describe the service. A model directory that is replaced or
retrained under the service is loaded again (:class:`ServedModel`). Requests wait in a queue; one batching
task takes what has arrived (after at most ``max_wait_ms`` past the oldest request, or as soon as
``max_batch_texts`` texts are waiting), runs one ``predict`` call on all of it in the single
model thread (the Predictor is never called from two threads at once, and the event loop never
waits on the model), and hands each request its own rows. Under load the model is always busy
with a batch while the next one gathers, so throughput approaches the batch rate.

Needs the ``serve`` extra (FastAPI and uvicorn). ``create_app`` builds the app for ``newsclf
serve`` and for any ASGI server: ``NEWSCLF_MODEL=DIR uvicorn --factory newsclf.serve:create_app``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException

from newsclf import __version__
from newsclf.arguments import check_count
from newsclf.errors import NewsclfError
from newsclf.spec import (LONG_TEXT_MODES, SERVE_MAX_CHARS, SERVE_MAX_TEXTS, SERVE_MAX_WAIT_MS,
                          SERVE_MAX_WINDOWS)

MAX_TEXTS, MAX_CHARS, MAX_WAIT_MS = SERVE_MAX_TEXTS, SERVE_MAX_CHARS, SERVE_MAX_WAIT_MS
MAX_WINDOWS = SERVE_MAX_WINDOWS
MAX_BATCH_TEXTS = 256
# windows one model call reads at most: a long request is read in such slices, taking turns
# with the requests that arrive meanwhile, and its slices stop when its client goes away
MAX_BATCH_WINDOWS = 1024
_DISCONNECT_POLL_SECONDS = 0.5
MODEL_ENV = "NEWSCLF_MODEL"
_WARM_UP_TEXT = "央行宣布下调存款准备金率"


class PredictRequest(BaseModel):
    """The body of ``POST /predict``."""

    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] = Field(
        description="the texts to classify (an empty string gets no label, with an error)",
        examples=[["沪指放量上涨 券商板块集体走强", "主队加时赛绝杀晋级决赛"]])
    top_k: Optional[StrictInt] = Field(
        None, ge=1, description="left out: one prediction per text; K: a list of the K most "
                                "likely classes per text, best first")
    long_text: Literal[LONG_TEXT_MODES] = Field(
        "truncate", description="texts longer than the model's max_len: keep the start "
                                "(truncate) or read all of it in windows of max_len, the first "
                                "counting as much as all the others together (chunk) or all "
                                "the same (chunk-mean)")


class Prediction(BaseModel):
    label: Optional[str] = Field(description="class name; null when the text has nothing to "
                                             "classify")
    score: Optional[float] = Field(description="its probability; null without a label")
    error: Optional[str] = Field(None, description='only without a label: "empty text" or '
                                                   '"no known token"')


class PredictResponse(BaseModel):
    predictions: list[Union[Prediction, list[Prediction]]] = Field(
        description="one per text, in order: a prediction, or with top_k a list of them, best "
                    "first (a text without a label gets a list holding its one error row)")


@dataclass
class _Pending:
    texts: list[str]
    top_k: int | None
    long_text: str
    future: asyncio.Future
    arrived: float
    windows: list[int]  # each text's windows (what reading it costs)
    predictor: object   # the model that answers it, whole, even if the service loads another
    taken: int = 0      # texts handed to a model call so far
    rows: list = field(default_factory=list)  # their results, in order


def request_windows(texts: list[str], long_text: str, max_len: int) -> list[int]:
    """The windows of ``max_len`` positions reading each text costs at most: one, or with a
    chunk mode one per ``max_len`` characters (a position holds a character or more)."""
    if long_text == "truncate":
        return [1] * len(texts)
    return [max(1, -(-len(text) // max_len)) for text in texts]


@dataclass
class ServiceStats:
    """What the service has done: requests answered, texts classified, model calls they took,
    the most texts one call carried."""

    requests: int = 0
    texts: int = 0
    model_calls: int = 0
    largest_batch: int = 0


class ServiceStopping(NewsclfError):
    """The service was asked to stop before the request was answered."""


class MicroBatcher:
    """Collects concurrent requests and runs them through the model in shared ``predict`` calls,
    one at a time, in one thread of its own."""

    def __init__(self, predictor, max_batch_texts: int = MAX_BATCH_TEXTS,
                 max_wait_ms: float = MAX_WAIT_MS, max_batch_windows: int = MAX_BATCH_WINDOWS):
        self.predictor = predictor
        self.max_batch_texts = max_batch_texts
        self.max_batch_windows = max_batch_windows
        self.max_wait = max_wait_ms / 1000
        self.stats = ServiceStats()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsclf-model")
        self._queue: deque[_Pending] = deque()
        self._queued_texts = 0
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def run_in_model_thread(self, function, *args):
        """Run ``function(*args)`` in the model thread and return its result (blocking)."""
        return self.executor.submit(function, *args).result()

    async def predict(self, texts: list[str], top_k: int | None, long_text: str,
                      windows: list[int] | None = None, gone=None):
        """``Predictor.predict(texts, top_k=top_k, long_text=long_text)``, batched with the
        requests around it; ``windows``: each text's cost (:func:`request_windows`);
        ``gone``: an async callable saying whether the client has left, which stops the
        request's remaining work (None is returned then)."""
        loop = self._loop = asyncio.get_running_loop()
        if self._stopping:
            raise ServiceStopping("the service is stopping")
        if self._task is None or self._task.done():  # started here: not every server runs lifespan
            self._arrived = asyncio.Event()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        self._queue.append(_Pending(texts, top_k, long_text, future, loop.time(),
                                    windows or [1] * len(texts), self.predictor))
        self._queued_texts += len(texts)
        self._arrived.set()
        while gone is not None:
            done, _ = await asyncio.wait({future}, timeout=_DISCONNECT_POLL_SECONDS)
            if done:
                break
            if await gone():
                future.cancel()  # its slices not yet read are dropped
                return None
        return await future

    def stop_soon(self) -> None:
        """Answer every waiting request with :class:`ServiceStopping` (and any that comes
        later), so a server asked to stop ends within one model call; safe from a signal
        handler."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop)
        self._stopping = True

    def _stop(self) -> None:
        self._stopping = True
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_exception(ServiceStopping("the service is stopping"))
        self._queue.clear()
        self._queued_texts = 0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            while (self._queue and self._queued_texts < self.max_batch_texts
                   and (left := self._queue[0].arrived + self.max_wait - loop.time()) > 0):
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._take_batch()
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self._predict_batch, batch)
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                for pending, _ in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for (pending, _), rows in zip(batch, results):
                pending.rows.extend(rows)
                if len(pending.rows) == len(pending.texts) and not pending.future.done():
                    pending.future.set_result(pending.rows)  # (its client may have gone)

    def _take_batch(self) -> list[tuple[_Pending, int]]:
        """Texts for one call, as ``(request, how many of its next texts)``: from the oldest
        request, then those after it with the same ``long_text`` and model, while they fit in
        ``max_batch_texts`` texts and ``max_batch_windows`` windows (one text at least). A
        request not taken whole goes behind the others, so a long one takes turns with those
        that arrive after it; requests whose client left are dropped."""
        batch, texts, windows, kept, cut = [], 0, 0, deque(), []
        mode = None
        while self._queue:
            pending = self._queue.popleft()
            if pending.future.done():
                self._queued_texts -= len(pending.texts) - pending.taken
                continue
            if mode is None:
                mode = (pending.long_text, pending.predictor)
            count = 0
            if (pending.long_text, pending.predictor) == mode:
                for cost in pending.windows[pending.taken:]:
                    if texts and (texts + 1 > self.max_batch_texts
                                  or windows + cost > self.max_batch_windows):
                        break
                    texts, windows, count = texts + 1, windows + cost, count + 1
            if count:
                batch.append((pending, count))
                pending.taken += count
                self._queued_texts -= count
            if pending.taken < len(pending.texts):
                (cut if count else kept).append(pending)
        self._queue = kept + deque(cut)
        return batch

    def _predict_batch(self, batch: list[tuple[_Pending, int]]) -> list[list]:
        """One ``predict`` call for the whole batch, split back per request: every text ranked by
        the largest ``top_k`` asked for, each request's rows cut to its own ``top_k`` (or to the
        best alone without one), which is what ``predict`` gives that request by itself."""
        texts = [text for pending, count in batch
                 for text in pending.texts[pending.taken - count:pending.taken]]
        largest_k = max(pending.top_k or 1 for pending, _ in batch)
        first = batch[0][0]
        rows = first.predictor.predict(texts, top_k=largest_k, long_text=first.long_text)
        results, start = [], 0
        for pending, count in batch:
            own = rows[start:start + count]
            start += count
            results.append([row[0] for row in own] if pending.top_k is None
                           else [row[:pending.top_k] for row in own])
        self.stats.model_calls += 1
        self.stats.texts += len(texts)
        self.stats.requests += sum(pending.taken == len(pending.texts) for pending, _ in batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        return results


class ServedModel:
    """The model the service answers with, and its directory watched: at most once a second
    (on ``/predict``, ``/health`` and ``/info``) the files the model was loaded from are
    compared with what is on disk (:func:`~newsclf.modeldir.directory_stamp`). When they
    changed, the directory is loaded again in the model thread, between two batches, and
    answers the requests that come from then on (one already waiting is answered whole by the
    model it came to); while it does not load (deleted, or being written), the service
    answers 503 naming the reason rather than with a model that is no longer there, and
    tries again. Only a model the service loaded from its directory is watched: a
    ``Predictor`` handed to :func:`create_app` is the caller's."""

    CHECK_SECONDS = 1.0

    def __init__(self, predictor, batcher: MicroBatcher, load=None):
        """``load()``: the directory's Predictor loaded again (None: not watched)."""
        from newsclf.modeldir import directory_stamp

        self.predictor, self.batcher, self._load_again = predictor, batcher, load
        self.problem: str | None = None
        self._stamp = directory_stamp(predictor.files.path) if load else None
        self._checked = time.monotonic()
        self._loading = False
        self._describe()

    def _describe(self) -> None:
        from newsclf.info import predicts_with
        from newsclf.modeldir import dev_metrics

        recorded = dev_metrics(self.predictor.files)
        self.metrics = _dev_metrics(recorded)
        self.described = predicts_with(self.predictor.files, recorded)

    async def check(self) -> None:
        """Load the directory again if it changed since it was loaded (see the class)."""
        from newsclf.modeldir import directory_stamp

        if (self._load_again is None or self._loading
                or time.monotonic() - self._checked < self.CHECK_SECONDS):
            return
        self._checked = time.monotonic()
        path = self.predictor.files.path
        before = directory_stamp(path)
        if before == self._stamp:
            self.problem = None  # the files the model was loaded from are back as they were
            return
        self._loading = True  # one load at a time, however many requests come meanwhile
        try:
            predictor = await asyncio.get_running_loop().run_in_executor(
                self.batcher.executor, self._load)
        except (NewsclfError, OSError) as exc:
            if self.problem is None:
                print(f"newsclf serve: {path} changed and does not load; answering 503 until "
                      f"it does: {exc}", file=sys.stderr, flush=True)
            self.problem = f"the model directory changed and does not load: {exc}"
            return
        finally:
            self._loading = False
        after = directory_stamp(path)
        # the load may write the export; a model file changed during the load is loaded next
        self._stamp = after if after[0] == before[0] else before
        self.predictor = self.batcher.predictor = predictor
        self.problem = None
        self._describe()
        print(f"newsclf serve: {path} changed on disk; loaded again "
              f"({len(predictor.classes_)} classes, {predictor.backend})", file=sys.stderr,
              flush=True)

    def _load(self):
        return _warmed_up(self._load_again())


class _JSONResponse(Response):
    """JSON with Chinese kept as is (half the bytes of \\u escapes) and no re-validation."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def create_app(model=None, *, max_texts: int = MAX_TEXTS, max_chars: int = MAX_CHARS,
               max_windows: int = MAX_WINDOWS, max_batch_texts: int = MAX_BATCH_TEXTS,
               max_wait_ms: float = MAX_WAIT_MS, backend: str = "auto",
               threads: int | None = None) -> FastAPI:
    """The FastAPI app serving ``model``: a :class:`~newsclf.predictor.Predictor`, or a model
    directory to load (with ``backend`` and ``threads``, see ``Predictor.from_dir``; default
    threads: one core less than the machine has, at most 4, leaving a core to the event loop).
    Without ``model``, the directory named by the ``NEWSCLF_MODEL`` environment variable, so
    ``uvicorn --factory newsclf.serve:create_app`` works.

    ``max_texts``, ``max_chars`` and ``max_windows`` bound a request (texts, characters per
    text, windows of ``max_len`` positions in all: :func:`request_windows`);
    ``max_batch_texts`` and ``max_wait_ms`` bound a batch (texts per model call, how long the
    oldest request waits for others to join it). The model is loaded and warmed up here, so a
    bad directory fails before any server starts."""
    max_texts, max_chars, max_windows, max_batch_texts = (
        check_count(max_texts, "max_texts"), check_count(max_chars, "max_chars"),
        check_count(max_windows, "max_windows"), check_count(max_batch_texts, "max_batch_texts"))
    threads = check_count(threads, "threads", optional=True)
    if not isinstance(max_wait_ms, (int, float)) or isinstance(max_wait_ms, bool) \
            or not 0 <= max_wait_ms <= 1000:
        raise NewsclfError(f"max_wait_ms must be between 0 and 1000, not {max_wait_ms!r}")
    from newsclf.predictor import Predictor

    predictor = _load_predictor(model, backend, threads)
    batcher = MicroBatcher(predictor, max_batch_texts, max_wait_ms)
    batcher.run_in_model_thread(_warmed_up, predictor)
    served = ServedModel(predictor, batcher, None if isinstance(model, Predictor) else (
        lambda: _load_predictor(predictor.files.path, backend, threads)))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await batcher.close()

    app = FastAPI(title="newsclf", version=__version__, lifespan=lifespan,
                  description="Classify Chinese news by topic. POST texts to /predict.")
    app.state.served = served
    app.state.batcher = batcher
    app.state.stats = batcher.stats

    _answer_errors_in_one_line(app)
    limits = {"max_texts": max_texts, "max_chars": max_chars, "max_windows": max_windows}

    @app.post("/predict", response_model=PredictResponse, summary="Classify texts",
              responses={413: {"description": "too many texts, a text too long, or too many "
                                              "windows to read"},
                         422: {"description": "a malformed request"}})
    async def predict(body: PredictRequest, request: Request):
        """Each text's class and probability, in input order, as `Predictor.predict` gives
        them. Limits: at most `max_texts` texts per request, `max_chars` characters per text
        and `max_windows` windows of `max_len` to read in all (see `/info`)."""
        await served.check()
        if served.problem:
            return _error(503, served.problem)
        windows = request_windows(body.texts, body.long_text, served.predictor.spec.max_len)
        refused = _refusal(body, windows, served.predictor.spec.max_len, limits)
        if refused is not None:
            return refused
        try:
            predictions = await batcher.predict(body.texts, body.top_k, body.long_text, windows,
                                                request.is_disconnected)
        except ServiceStopping:
            return _error(503, "the service is stopping; send the request again once it is "
                               "back")
        if predictions is None:
            return _error(499, "the client closed the request")
        return _JSONResponse({"predictions": predictions})

    @app.get("/health", summary="Whether the service is up")
    async def health():
        await served.check()
        if served.problem:
            return JSONResponse({"status": "unavailable", "model_loaded": False,
                                 "detail": served.problem}, status_code=503)
        return {"status": "ok", "model_loaded": True}

    @app.get("/info", summary="The model, the limits and what the service has done")
    async def info():
        await served.check()
        predictor = served.predictor
        spec = predictor.spec
        return _JSONResponse({
            "newsclf_version": __version__,
            "model": predictor.files.path.name,
            "classes": [str(name) for name in predictor.classes_],
            "metrics": served.metrics,
            "backend": predictor.backend,
            "tokenizer": spec.tokenizer,
            "max_len": spec.max_len,
            "ensemble_size": spec.ensemble_size,  # the encoders it runs: 1 for a student
            "model_kind": served.described,
            "limits": limits,
            "batching": {"max_batch_texts": max_batch_texts, "max_wait_ms": max_wait_ms},
            "stats": asdict(batcher.stats),
        })

    return app


def _refusal(body: PredictRequest, windows: list[int], max_len: int,
             limits: dict) -> JSONResponse | None:
    """The answer to a request beyond a limit (None if it is within them all)."""
    texts = body.texts
    if not texts:
        return _error(422, 'texts is empty: send at least one text, {"texts": ["..."]}')
    if len(texts) > limits["max_texts"]:
        return _error(413, f"too many texts: {len(texts)} in one request, at most "
                           f"{limits['max_texts']}; split them over several requests")
    for i, text in enumerate(texts):
        if len(text) > limits["max_chars"]:
            return _error(413, f"texts[{i}] has {len(text)} characters, at most "
                               f"{limits['max_chars']}; shorten it")
    if sum(windows) > limits["max_windows"]:
        return _error(413, f"too much to read in one request: long_text {body.long_text!r} "
                           f"reads these texts in up to {sum(windows)} windows of {max_len} "
                           f"characters, at most {limits['max_windows']}; split them over "
                           "several requests")
    return None


def _answer_errors_in_one_line(app: FastAPI) -> None:
    """A malformed request is a 422 whose detail is one line; any other error keeps its status
    with a one-line detail."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line(exc.errors())}, status_code=422)

    @app.exception_handler(HTTPException)
    async def unreadable_body(request: Request, exc: HTTPException):
        detail = _unreadable_body(exc.__cause__) if exc.status_code == 400 else None
        if detail is None:
            return await http_exception_handler(request, exc)
        return _error(422, detail)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"},
                            status_code=500)


def _warmed_up(predictor):
    """``predictor``, once it has labelled a text (its engine's first call is slow)."""
    predictor.predict([_WARM_UP_TEXT])
    return predictor


def default_threads() -> int:
    """Engine threads for a served model: the cores less one (for the event loop), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def _load_predictor(model, backend: str, threads: int | None):
    from newsclf.predictor import Predictor

    if isinstance(model, Predictor):
        return model
    if model is None:
        model = os.environ.get(MODEL_ENV)
        if not model:
            raise NewsclfError(f"no model: pass create_app a Predictor or a model directory, or "
                               f"set {MODEL_ENV}=DIR")
    if not isinstance(model, (str, Path)):
        raise NewsclfError(f"model must be a Predictor or a model directory, not "
                           f"{type(model).__name__}")
    return Predictor.from_dir(model, backend=backend, threads=threads or default_threads())


def _dev_metrics(recorded: dict) -> dict | None:
    """The dev scores among a model directory's ``recorded`` metrics (None without them)."""
    keys = ("predicts_with", "dev_accuracy", "dev_macro_f1", "best_epoch", "n_train", "n_dev")
    return {key: recorded[key] for key in keys if key in recorded} or None


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _unreadable_body(cause: BaseException | None) -> str | None:
    """What to fix in a body FastAPI could not parse as JSON (it answers such a body with a
    bare "There was an error parsing the body"), or None when the cause is not the body's."""
    example = '{"texts": ["..."]}'
    if isinstance(cause, UnicodeDecodeError):
        return (f"the body is not UTF-8 (byte {cause.start} cannot be decoded): send the JSON "
                f"encoded as UTF-8, e.g. {example}")
    if isinstance(cause, RecursionError):
        return f"the body's JSON is nested too deep to read: send a flat object such as {example}"
    return None


def _one_line(errors) -> str:
    """The first validation error as one line saying what to fix (an unknown field first: it
    explains the others, as with "text" for "texts")."""
    if not errors:
        return "invalid request"
    error = min(errors, key=lambda error: error.get("type") != "extra_forbidden")
    kind, location = error.get("type", ""), list(error.get("loc", ()))
    if location and location[0] == "body":
        location = location[1:]
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                   for part in location).lstrip(".")
    given = error.get("input")
    example = '{"texts": ["..."], "top_k": 3}'
    if kind == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    if not name and kind == "missing":
        return f"the body is missing: send a JSON object such as {example}"
    if not name and isinstance(given, (bytes, str)):
        return (f"send the body as JSON with Content-Type: application/json (curl: --json), "
                f"e.g. {example}")
    if not name or kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"the body must be a JSON object such as {example}, not {_as_json(given)}"
    if kind == "missing":
        return f'{name} is missing: send {{"texts": ["..."]}}'
    if kind == "extra_forbidden":
        return f"unknown field {name!r}; the fields are texts, top_k and long_text"
    if name == "top_k":
        return f"top_k must be a whole number of at least 1 (or left out), not {_as_json(given)}"
    if name == "long_text":
        return f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, not {_as_json(given)}"
    if name == "texts":
        return f"texts must be a list of strings, not {_as_json(given)}"
    if name.startswith("texts["):
        return f"{name} must be a string, not {_as_json(given)}"
    return f"{name}: {error.get('msg', 'invalid')}"


def _as_json(value, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."

