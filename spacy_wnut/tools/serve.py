"""`spacy wnut serve`: a pipeline behind HTTP (FastAPI on uvicorn), with dynamic batching.

`POST /v1/entities` takes `{"text": ...}` or `{"texts": [...]}` (plus an
optional `"id"` and `"min_score"`) and answers `{"id": ..., "results": [...]}`: per text, the
row `annotate` writes to JSONL (`source` is the request's id, `line` the
text's position from 1, then `text` and `entities` with character offsets,
label, text and score). Texts of concurrent requests are tagged together in
one `nlp.pipe` call (`batching_queue.DynamicBatcher`), in one worker thread.

- `GET /health` answers as soon as the server listens; `GET /ready` answers
  503 until the pipeline, loaded in the background by the app's lifespan, is
  ready (a pipeline that fails to load stops the server). `GET /metrics`:
  Prometheus text format. OpenAPI: `/docs` and `/openapi.json`.
- Bad requests get a JSON body `{"error": {"type", "field", "message"}}`:
  a body that is not UTF-8 JSON (or nested too deeply) 400, wrong fields or types
  422, a body not received within `read_timeout` 408, a body over
  `max_body_bytes`, more than `max_texts` texts or a text over `nlp.max_length`
  413, a full queue (or a model not ready yet) 503 with `Retry-After`, a request
  not answered within `request_timeout` 503, a text on which the pipeline raises
  500 for that request alone (logged with its id).
- Ids: a string (any Unicode but control characters) or a whole number, at most
  `MAX_ID_CHARS` characters; `X-Request-ID` carries it percent-encoded (UTF-8)
  where it is not visible ASCII.
- Connections: one that sends no complete request head within `read_timeout` is
  closed (nginx's `client_header_timeout`), an idle keep-alive one after
  `keep_alive_timeout`; near `max_connections` the longest idle one is closed to
  make room. A client that goes away has its texts dropped from the queue.
- `/metrics` counts each request by the status it was sent, 499 (nginx's "client
  closed request") where the client left before its answer.
- SIGTERM or SIGINT: uvicorn stops accepting connections and waits up to
  `drain_timeout` seconds for the requests in flight, whose texts are still
  tagged; those not answered by then get 503 `shutting_down`. The process exits
  0 when every request in flight was answered, else 1 (`serve` returns how many
  were not). A second SIGINT answers them 503 at once.

Nothing here imports torch or transformers: a run-time (ONNX) pipeline serves without them.
"""

import asyncio
import json
import logging
import resource
import signal
import socket
import time
import unicodedata
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from spacy.language import Language
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..data.records import Record, check_unicode, output_row
from ..errors import ConfigError, UserError
from ..pipeline.engines import ENGINES
from .annotate import SCORES_KEY, load_for_annotation
from .batching_queue import DynamicBatcher, QueueClosed, QueueFull
from .connections import guarded_protocol

ENTITIES_PATH = "/v1/entities"
MAX_ID_CHARS = 256
# `X-Request-ID` keeps visible ASCII as it is; anything else (and `%`) is percent-encoded UTF-8.
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
# asyncio accepts up to the listen backlog of connections in one go, before any of them can make room:
# the open-file limit keeps that many free, and 64 for the process itself (model files, logs, the event
# loop), when `max_connections` is derived from it. 128 was Linux's SOMAXCONN for years.
ACCEPT_BACKLOG = 128
RESERVED_FDS = 64 + ACCEPT_BACKLOG
logger = logging.getLogger("spacy_wnut.serve")


# Fixed glibc mmap threshold: flat RSS, and (unlike 64 KiB, which mapped and zeroed every activation
# anew) torch's speed: MiniLM-L6 at 32 clients 138 req/s, against 120 at 64 KiB and 145 with glibc's
# dynamic threshold, whose RSS grows (bench/results/2026-12-01-serve-minilm-mmap.md).
MMAP_THRESHOLD = 1 << 20


@dataclass
class ServeSettings:
    """How the server batches, what it refuses, and how it runs the pipeline.

    max_batch (int): most texts per `nlp.pipe` call.
    max_wait_ms (float): how long a batch waits to fill after its oldest text arrived.
    max_queue (int): most texts waiting for a batch; a request that does not fit gets 503.
    max_texts (int): most texts in one request (413 above).
    max_body_bytes (int): largest request body (413 above).
    max_length (Optional[int]): longest text in characters (413 above); sets `nlp.max_length`
        (default: the pipeline's own, spaCy's 1,000,000).
    threads (Optional[int]): CPU threads of the forward pass (default: the engine's).
    engine (Optional[str]): inference engine (torch, onnx, onnx-int8, torch-int8; default: the pipeline's).
    batching (bool): gather texts of concurrent requests; False tags one text per `nlp` call.
    drain_timeout (int): seconds a stop waits for the requests in flight (then they get 503).
    read_timeout (float): seconds a connection has to send a request's head (from its start or the
        previous answer), and then its body (408 after).
    keep_alive_timeout (float): seconds an idle keep-alive connection stays open.
    request_timeout (float): seconds from a request's body to its answer (503 `timeout` after; its
        texts are dropped from the queue).
    max_connections (Optional[int]): most open connections; past it the longest idle one is closed
        (default: the open-file limit less `RESERVED_FDS`).
    retry_after (int): seconds a 503 tells the client to wait (`Retry-After`).
    mmap_threshold (int): `serve` sets glibc's `M_MMAP_THRESHOLD` to this many bytes (0: glibc's own,
        dynamic one); see `limit_heap_growth`.
    """

    max_batch: int = 64
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    max_texts: int = 256
    max_body_bytes: int = 1_048_576
    max_length: Optional[int] = None
    threads: Optional[int] = None
    engine: Optional[str] = None
    batching: bool = True
    drain_timeout: int = 30
    read_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    request_timeout: float = 60.0
    max_connections: Optional[int] = None
    retry_after: int = 1
    mmap_threshold: int = MMAP_THRESHOLD

    def __post_init__(self) -> None:
        whole = ("max_batch", "max_queue", "max_texts", "max_body_bytes", "max_length", "threads", "max_connections")
        for name in (*whole, "retry_after"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: must be a whole number of at least 1")
        if self.max_wait_ms < 0 or self.drain_timeout < 0 or self.mmap_threshold < 0:
            raise ConfigError("--max-wait-ms, --drain-timeout and --mmap-threshold must be 0 or more")
        for name in ("read_timeout", "keep_alive_timeout", "request_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: must be more than 0 seconds")
        if self.engine is not None and self.engine not in ENGINES:
            raise ConfigError(f"--engine {self.engine!r}: must be one of {', '.join(ENGINES)}")
        if self.max_texts > self.max_queue:
            raise ConfigError(
                f"--max-texts {self.max_texts} is more than --max-queue {self.max_queue}: "
                "a request that large could never be queued"
            )

    @property
    def batch_limits(self) -> Dict[str, float]:
        """The batcher's `max_batch` and `max_wait_ms` (1 and 0 without batching)."""
        if not self.batching:
            return {"max_batch": 1, "max_wait_ms": 0.0}
        return {"max_batch": self.max_batch, "max_wait_ms": self.max_wait_ms}


class EntitiesRequest(BaseModel):
    """The body of `POST /v1/entities`: exactly one of `text` and `texts`, and an optional `id`."""

    model_config = ConfigDict(extra="forbid")
    text: Optional[StrictStr] = Field(None, description="one text to tag")
    texts: Optional[List[StrictStr]] = Field(None, min_length=1, description="texts to tag, in order")
    id: Optional[Union[StrictStr, StrictInt]] = Field(
        None, description="carried into the answer, each row's `source` and the server log (default: a new UUID)"
    )
    min_score: Optional[float] = Field(
        None, ge=0.0, le=1.0, strict=True, description="leave out entities whose probability is below this"
    )

    @field_validator("id")
    @classmethod
    def _printable_and_short(cls, value: Optional[Union[str, int]]) -> Optional[Union[str, int]]:
        text = str(value) if value is not None else ""
        if len(text) > MAX_ID_CHARS:
            raise ValueError(f"the id is {len(text)} characters long; at most {MAX_ID_CHARS}")
        problem = check_unicode(text)
        if problem:
            raise ValueError(f"the id holds a {problem}")
        control = next((c for c in text if unicodedata.category(c) == "Cc"), None)
        if control is not None:
            raise ValueError(f"the id holds the control character {control!r}")
        return value

    @model_validator(mode="after")
    def _one_of_text_and_texts(self) -> "EntitiesRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) and 'texts' (a list of strings)")
        return self


class Entity(BaseModel):
    start: int = Field(description="character offset of the first character")
    end: int = Field(description="character offset after the last character")
    label: str
    text: str
    score: Optional[float] = Field(description="the component's mean token probability")


class Row(BaseModel):
    """One tagged text: the record `annotate` writes to JSONL."""

    source: str = Field(description="the request's id")
    line: int = Field(description="the text's position in the request, from 1")
    text: str
    entities: List[Entity]


class EntitiesResponse(BaseModel):
    id: Union[str, int]
    results: List[Row]


class ErrorDetail(BaseModel):
    type: str
    field: Optional[str] = Field(description="the request field at fault, e.g. `texts.2`")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
    id: Optional[Union[str, int]] = None


class ServeError(Exception):
    """A request the server refuses: its status, error type, the field at fault and why."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        field: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        id: Any = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field = status, type, message, field
        self.headers, self.id = headers, id

    def response(self) -> JSONResponse:
        body: Dict[str, Any] = {"error": {"type": self.type, "field": self.field, "message": self.message}}
        if self.id is not None:
            body["id"] = self.id
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class ServeMetrics:
    """The server's Prometheus metrics, in a registry of their own."""

    def __init__(self, max_batch: int, depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("spacy_wnut_requests", f"{ENTITIES_PATH} requests by status", ["status"], registry=r)
        self.latency = Histogram(
            "spacy_wnut_request_seconds",
            f"{ENTITIES_PATH} time from the request to the answer",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.texts = Counter("spacy_wnut_texts", "texts tagged", registry=r)
        self.failed_texts = Counter("spacy_wnut_failed_texts", "texts on which the pipeline raised", registry=r)
        buckets = sorted({2**i for i in range(max_batch.bit_length())} | {max_batch})
        self.batch_size = Histogram("spacy_wnut_batch_size", "texts per nlp.pipe call", buckets=buckets, registry=r)
        self.batch_seconds = Histogram(
            "spacy_wnut_batch_seconds",
            "time of one nlp.pipe call",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.queue_depth = Gauge("spacy_wnut_queue_depth", "texts waiting for a batch", registry=r)
        self.queue_depth.set_function(depth)
        self.ready = Gauge("spacy_wnut_ready", "1 once the pipeline is loaded", registry=r)
        self.connections_closed = Counter(
            "spacy_wnut_connections_closed", "connections the server closed, by reason", ["reason"], registry=r
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)


class Service:
    """The pipeline, its batcher and its state, shared by the app's routes and lifespan."""

    def __init__(self, model: Union[str, Path], settings: ServeSettings) -> None:
        self.model, self.settings = model, settings
        self.nlp: Optional[Language] = None
        self.batcher: Optional[DynamicBatcher] = None
        self.load_error: Optional[str] = None
        self.on_load_error: Optional[Callable[[], None]] = None
        self.executor: Optional[ThreadPoolExecutor] = None
        self.metrics = ServeMetrics(settings.batch_limits["max_batch"], lambda: self.depth)
        self.in_flight = 0
        self.unanswered = 0  # requests in flight at a stop that got 503 instead of their answer
        self.worker_busy = False  # the worker thread is loading or tagging
        self._drain_deadline: Optional[asyncio.TimerHandle] = None
        self.abort_reason: Optional[str] = None

    @property
    def depth(self) -> int:
        return self.batcher.depth if self.batcher is not None else 0

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    @contextmanager
    def _working(self) -> Iterator[None]:
        """Mark the worker thread busy (loading or tagging) for the block."""
        self.worker_busy = True
        try:
            yield
        finally:
            self.worker_busy = False

    def _load(self) -> Language:
        with self._working():
            nlp = load_for_annotation(self.model, engine=self.settings.engine, n_threads=self.settings.threads)
            if self.settings.max_length is not None:
                nlp.max_length = self.settings.max_length
            nlp("warm-up")  # the first call builds lazily made state (sessions, caches): not in a request's time
        return nlp

    async def start(self) -> None:
        """Load the pipeline in the worker thread, then start batching."""
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spacy-wnut-nlp")
        try:
            self.nlp = await asyncio.get_running_loop().run_in_executor(self.executor, self._load)
        except Exception as err:
            if isinstance(err, (UserError, ValueError, OSError)):  # the model's name or files: no traceback
                logger.error("%s: the pipeline failed to load: %s", self.model, err)
            else:
                logger.exception("%s: the pipeline failed to load", self.model)
            self.load_error = str(err) or type(err).__name__
            if self.on_load_error is not None:
                self.on_load_error()
            return
        limits = self.settings.batch_limits
        self.batcher = DynamicBatcher(
            self._tag,
            self.executor,
            max_batch=int(limits["max_batch"]),
            max_wait_ms=limits["max_wait_ms"],
            max_queue=self.settings.max_queue,
            on_batch=self.metrics.observe_batch,
        )
        self.batcher.start()
        self.metrics.ready.set(1)
        logger.info("pipeline %s ready: %s, batching %s", self.model, self.nlp.pipe_names, limits)

    def begin_drain(self) -> None:
        """A stop began: what is in flight when `drain_timeout` is over gets 503."""
        timeout = self.settings.drain_timeout
        reason = f"not tagged within --drain-timeout {timeout} s"
        self._drain_deadline = asyncio.get_running_loop().call_later(timeout, self.abort, reason)

    def abort(self, reason: str) -> None:
        """Answer every request in flight 503 `shutting_down` now (the running batch's results are dropped).

        reason (str): why, in each answer and the log (e.g. `not tagged within --drain-timeout 30 s`).
        """
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
        self.abort_reason = reason
        if self.batcher is not None:
            self.batcher.abort(QueueClosed(f"the server is stopping: {reason}"))

    async def stop(self) -> None:
        """Finish what is queued (unless aborted), then stop the worker thread (not waiting for a batch
        whose requests were answered 503)."""
        self.metrics.ready.set(0)
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
        if self.batcher is not None:
            await self.batcher.close()
        if self.executor is not None:
            self.executor.shutdown(wait=not self.worker_busy, cancel_futures=True)

    def _tag(self, records: List[Record]) -> List[Dict[str, Any]]:
        with self._working():
            docs = self.nlp.pipe([r.text for r in records], batch_size=len(records))
            return [output_row(record, doc, SCORES_KEY) for record, doc in zip(records, docs)]

    def texts_of(self, body: EntitiesRequest) -> List[str]:
        """The request's texts, refused (with the field) when they are too many, too long or not valid Unicode."""
        field = "text" if body.text is not None else "texts"
        texts = [body.text] if body.text is not None else body.texts
        if len(texts) > self.settings.max_texts:
            raise ServeError(413, "too_large", f"{len(texts)} texts; at most {self.settings.max_texts}", field)
        for i, text in enumerate(texts):
            where = field if body.text is not None else f"texts.{i}"
            if len(text) > self.nlp.max_length:
                message = f"{len(text)} characters; at most {self.nlp.max_length} (nlp.max_length)"
                raise ServeError(413, "too_large", message, where)
            problem = check_unicode(text)
            if problem:
                raise ServeError(422, "invalid_text", problem, where)
        return texts

    async def entities(self, body: EntitiesRequest) -> Dict[str, Any]:
        """The answer to one request, or a `ServeError`."""
        self.in_flight += 1
        try:
            return await self._entities(body)
        finally:
            self.in_flight -= 1

    async def _entities(self, body: EntitiesRequest) -> Dict[str, Any]:
        retry = {"Retry-After": str(self.settings.retry_after)}
        if not self.ready:
            message = "the pipeline failed to load" if self.load_error else "the pipeline is still loading"
            raise ServeError(503, "not_ready", message, headers=retry, id=body.id)
        try:
            texts = self.texts_of(body)
        except ServeError as refused:
            refused.id = body.id
            raise
        request_id = body.id if body.id is not None else uuid.uuid4().hex
        records = [Record(str(request_id), i, text) for i, text in enumerate(texts, start=1)]
        timeout = self.settings.request_timeout
        try:
            outcomes = await asyncio.wait_for(self.batcher.submit(records), timeout)
        except QueueFull as err:
            raise ServeError(503, "queue_full", f"the server is busy: {err}", headers=retry, id=request_id) from None
        except QueueClosed as err:  # submitted while stopping: answered as if aborted in the queue
            outcomes = [err]
        except asyncio.TimeoutError:
            message = f"not tagged within --request-timeout {timeout:g} s (its texts were dropped)"
            raise ServeError(503, "timeout", message, headers=retry, id=request_id) from None
        closed = next((o for o in outcomes if isinstance(o, QueueClosed)), None)
        if closed is not None:  # the stop came first, or came while its texts waited or ran
            self.unanswered += 1
            raise ServeError(503, "shutting_down", str(closed), headers=retry, id=request_id)
        failed = [(i, outcome) for i, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)]
        self.metrics.texts.inc(len(outcomes) - len(failed))
        if failed:
            self.metrics.failed_texts.inc(len(failed))
            for i, error in failed:
                logger.error("request %s: the pipeline raised on text %d", request_id, i, exc_info=error)
            i, error = failed[0]
            where = "text" if body.text is not None else f"texts.{i}"
            message = f"the pipeline raised {type(error).__name__} on this text (the server log has it under this id)"
            raise ServeError(500, "pipeline_error", message, where, id=request_id)
        if body.min_score is not None:
            for row in outcomes:
                row["entities"] = [e for e in row["entities"] if (e["score"] or 0.0) >= body.min_score]
        return {"id": request_id, "results": outcomes}


class ClientGone(Exception):
    """The client closed its connection before its request was answered."""


class BodyTooLarge(Exception):
    """The request body streamed past the limit."""


class RequestGuard:
    """For one path: counts each request by the status its answer was sent with (499 where the client
    left first, 500 where none was sent) and times it; refuses a body over `limit` bytes (413) or not
    received within `read_timeout` seconds (408); and cancels a request whose client goes away, so
    that its texts are dropped from the queue."""

    def __init__(self, app: ASGIApp, path: str, limit: int, read_timeout: float, metrics: ServeMetrics) -> None:
        self.app, self.path, self.limit, self.read_timeout, self.metrics = app, path, limit, read_timeout, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        gone = asyncio.Event()
        started: Optional[int] = None
        sent: Optional[str] = None

        async def counted(message: Message) -> None:
            nonlocal started, sent
            final = message["type"] == "http.response.body" and not message.get("more_body", False)
            if final and gone.is_set():
                sent = "499"  # uvicorn drops what is sent to a closed connection
            await send(message)
            if message["type"] == "http.response.start":
                started = message["status"]
            elif final and sent is None:
                sent = str(started)

        with self.metrics.latency.time():
            try:
                await self._guarded(scope, receive, counted, gone)
            finally:
                self.metrics.requests.labels(sent or ("499" if gone.is_set() else "500")).inc()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, gone: asyncio.Event) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = ServeError(413, "too_large", f"the request body is over {self.limit} bytes", "body")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await too_large.response()(scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.read_timeout)
        except BodyTooLarge:
            return await too_large.response()(scope, receive, send)
        except ClientGone:
            gone.set()
            return
        except asyncio.TimeoutError:
            message = f"the request body did not arrive within {self.read_timeout:g} s (--read-timeout)"
            late = ServeError(408, "timeout", message, "body", headers={"Connection": "close"})
            return await late.response()(scope, receive, send)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        answer = asyncio.ensure_future(self.app(scope, replay, send))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({answer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not answer.done():  # the client left (or the server cancels us): its texts are dropped
                answer.cancel()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        try:
            await answer
        except asyncio.CancelledError:
            if not gone.is_set():
                raise

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone()
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                raise BodyTooLarge()
            if not message.get("more_body", False):
                return b"".join(chunks)


def header_id(request_id: Union[str, int]) -> str:
    """`request_id` as an `X-Request-ID` value: visible ASCII as it is, anything else percent-encoded."""
    return urllib.parse.quote(str(request_id), safe=HEADER_SAFE)


def parse_body(raw: bytes) -> EntitiesRequest:
    """The request body as UTF-8 JSON (whatever its Content-Type), validated: 400 for a body that is not
    UTF-8 or does not parse, 422 for wrong fields or types, naming the field (`texts.1`)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        message = f"the body is not UTF-8 ({err.reason} at byte {err.start}); JSON bodies are UTF-8"
        raise ServeError(400, "invalid_json", message, "body") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ServeError(400, "invalid_json", f"the body is not valid JSON: {err}", "body") from None
    except RecursionError:
        raise ServeError(400, "invalid_json", "the body's JSON is nested too deeply", "body") from None
    try:
        return EntitiesRequest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = first.get("loc", ())
        # The field and its list indices (`texts.1`), without pydantic's union member tags (`id.str`).
        field = ".".join(str(part) for part in loc[:1] + tuple(p for p in loc[1:] if isinstance(p, int))) or "body"
        message = first.get("msg", "invalid").removeprefix("Value error, ")
        if first.get("type") == "extra_forbidden":
            message = "unknown field (the fields are text, texts, id and min_score)"
        elif field == "id" and first.get("type") != "value_error":
            message = "the id must be a string or a whole number"
        raise ServeError(422, "invalid_field", message, field) from None


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return ServeError(exc.status_code, "http", str(exc.detail), headers=getattr(exc, "headers", None)).response()


def create_app(model: Union[str, Path], settings: Optional[ServeSettings] = None) -> FastAPI:
    """The ASGI app serving `model`; the pipeline is loaded by the app's lifespan, in the background.

    model (Union[str, Path]): pipeline directory or package name.
    settings (Optional[ServeSettings]): batching, limits and engine (default: `ServeSettings()`).
    RETURNS (FastAPI): the app; its `state.service` holds the pipeline and the metrics.
    """
    settings = settings or ServeSettings()
    service = Service(model, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.create_task(service.start())
        try:
            yield
        finally:
            if not loading.done():  # stopped while loading: the load runs on in its thread, not waited for
                loading.cancel()
                await asyncio.gather(loading, return_exceptions=True)
            await service.stop()

    app = FastAPI(
        title="spacy-wnut",
        summary="Named entities of texts, tagged by a spacy-wnut pipeline with dynamic batching.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ServeError, lambda request, exc: exc.response())
    refusals = {status: {"model": ErrorResponse} for status in (400, 413, 422, 500, 503)}

    body_schema = {"content": {"application/json": {"schema": EntitiesRequest.model_json_schema()}}, "required": True}

    @app.post(
        ENTITIES_PATH, response_model=EntitiesResponse, responses=refusals, openapi_extra={"requestBody": body_schema}
    )
    async def entities(request: Request) -> JSONResponse:
        """Entities of one text or several, with character offsets, label, text and score."""
        answer = await service.entities(parse_body(await request.body()))
        return JSONResponse(answer, headers={"X-Request-ID": header_id(answer["id"])})

    @app.get("/health")
    async def health() -> Dict[str, str]:
        """Live: the server answers (the pipeline may still be loading)."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"model": ErrorResponse}})
    async def ready() -> Dict[str, Any]:
        """Ready: the pipeline is loaded and takes requests (503 before)."""
        if not service.ready:
            message = f"the pipeline failed to load: {service.load_error}" if service.load_error else "loading"
            raise ServeError(503, "not_ready", message, headers={"Retry-After": str(settings.retry_after)})
        return {"status": "ready", "pipeline": service.nlp.pipe_names, **settings.batch_limits}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        RequestGuard,
        path=ENTITIES_PATH,
        limit=settings.max_body_bytes,
        read_timeout=settings.read_timeout,
        metrics=service.metrics,
    )
    return app


def _log_config() -> Dict[str, Any]:
    """uvicorn's logging, with this module's logger on its handler."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["spacy_wnut"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


@contextmanager
def _stopping_quietly() -> Iterator[List[str]]:
    """Let a SIGINT/SIGTERM that uvicorn has handled (it drains, then raises the signal again) end the
    process with status 0, as a service's normal stop; the names of the signals are collected."""
    received: List[str] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        signal.signal(sig, lambda signum, frame: received.append(signal.Signals(signum).name))
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def limit_heap_growth(threshold: int) -> bool:
    """Make glibc serve allocations of `threshold` bytes and more with mmap, returned on free.

    Batches of varying sizes allocate tensors of ever new sizes; with glibc's dynamic threshold most
    land on the heap, whose freed holes the process keeps: RSS kept growing under bench/serve.py
    --memory (MiniLM-L6, torch: +31 MB over 17,500 requests) and stays flat with a fixed threshold
    (+3 MB at 1 MiB). `MALLOC_MMAP_THRESHOLD_` in the environment (glibc's own setting) wins.
    RETURNS (bool): whether the threshold was set.
    """
    import ctypes
    import os

    if threshold <= 0 or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to do
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, threshold))


def default_max_connections() -> int:
    """The open-file limit less `RESERVED_FDS` (at least 16): past it, the server makes room."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(16, soft - RESERVED_FDS)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, before anything is loaded: a port in use is a one-line error at once.

    RETURNS (socket.socket): the bound socket, for `uvicorn.Server.run(sockets=...)`.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    sock.set_inheritable(True)
    return sock


def serve(
    model: Union[str, Path],
    settings: Optional[ServeSettings] = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    access_log: bool = True,
) -> "Stopped":
    """Serve `model` over HTTP until SIGINT or SIGTERM, then drain the requests in flight and return.

    model (Union[str, Path]): pipeline directory or package name.
    settings (Optional[ServeSettings]): batching, limits, timeouts and engine.
    host (str): address to listen on.
    port (int): port to listen on (checked before the pipeline loads).
    access_log (bool): log one line per request.
    RETURNS (Stopped): how the stop went: requests answered 503, and whether a batch is still running.
    Raises `ConfigError` if the port cannot be listened on or the pipeline fails to load (the server stops then).
    """
    settings = settings or ServeSettings()
    sock = listening_socket(host, port)
    limit_heap_growth(settings.mmap_threshold)
    app = create_app(model, settings)
    service: Service = app.state.service
    max_connections = settings.max_connections or default_max_connections()
    protocol = guarded_protocol(settings.read_timeout, max_connections, service.metrics.connections_closed)
    config = uvicorn.Config(
        app,
        http=protocol,
        timeout_keep_alive=settings.keep_alive_timeout,
        backlog=ACCEPT_BACKLOG,
        # A backstop: `Service.begin_drain` answers what is left after drain_timeout itself.
        timeout_graceful_shutdown=settings.drain_timeout + 5,
        log_config=_log_config(),
        access_log=access_log,
        lifespan="on",
    )
    server = DrainingServer(config, service)
    service.on_load_error = server.stop_now
    with _stopping_quietly() as received:
        server.run(sockets=[sock])
    if service.load_error is not None:
        raise ConfigError(f"{model}: the pipeline failed to load: {service.load_error}")
    if received:
        if service.unanswered:
            logger.error(
                "stopped by %s: %d request(s) in flight got 503 instead of their answer (%s)",
                received[0],
                service.unanswered,
                service.abort_reason,
            )
        else:
            logger.info("stopped by %s after draining the requests in flight", received[0])
    return Stopped(service.unanswered, service.worker_busy)


@dataclass
class Stopped:
    """How a server's stop went.

    unanswered (int): requests in flight at the stop that got 503 instead of their answer (0: a complete drain).
    worker_busy (bool): the worker thread still runs a batch (or a load) whose result nobody waits for;
        the process should exit without waiting for it (`spacy wnut serve` does, with `os._exit`).
    """

    unanswered: int
    worker_busy: bool


class DrainingServer(uvicorn.Server):
    """`uvicorn.Server` whose stop answers what is still in flight after `drain_timeout` (or at a second
    SIGINT) with 503, instead of cancelling it.

    config (uvicorn.Config): the server's config.
    service (Service): the pipeline's service, told when the stop begins.
    """

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def stop_now(self) -> None:
        """Stop serving (the pipeline failed to load)."""
        self.should_exit = True

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        if self.force_exit and self._loop is not None:  # a second SIGINT: answer everything now
            self._loop.call_soon_threadsafe(self.service.abort, "stopped at once by a second SIGINT")

    async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        for sock in sockets or []:  # uvicorn names the address only for sockets it bound itself
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            logger.info(
                "listening on http://%s:%d (SIGTERM or Ctrl-C stops, draining the requests in flight)", shown, port
            )

    async def shutdown(self, sockets: Optional[List[socket.socket]] = None) -> None:
        self.service.begin_drain()
        await super().shutdown(sockets=sockets)
        if self.force_exit:  # uvicorn skips the lifespan's shutdown: let the 503s go out, then run it
            deadline = time.monotonic() + 1.0
            while self.service.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            await self.lifespan.shutdown()
