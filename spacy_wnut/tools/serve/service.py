"""The service: the pipeline, loaded in the background, behind one dynamic batcher; a request's texts in, rows out."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

from spacy.language import Language

from ...data.records import Record, check_unicode, output_row
from ...errors import UserError
from ..annotate import SCORES_KEY, load_for_annotation
from .batching import DynamicBatcher, QueueClosed, QueueFull
from .errors import ServeError
from .metrics import ServeMetrics
from .schema import EntitiesRequest
from .settings import ServeSettings, logger


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
