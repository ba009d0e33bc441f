"""Dynamic batching: items of concurrent requests gathered into one call, run off the event loop.

Requests `submit` their items to one bounded `asyncio.Queue`; one worker task
takes up to `max_batch` of them, waiting at most `max_wait_ms` after the
oldest was queued for the batch to fill, and runs `process(batch)` in a
single worker thread (spaCy pipelines are not thread-safe, and the forward
pass uses its own threads). Each request gets back its own results, in order.

- A request is admitted whole or not at all: if its items do not fit in the
  queue, `submit` raises `QueueFull` at once (the server answers 503).
- A batch whose `process` raises is run again one item at a time, so only the
  items that raise on their own fail (their exception is their result) and
  every other request keeps its results.
- Items of a request that was cancelled (its waiting `submit` was cancelled) are skipped.
- `close` refuses new items, finishes everything queued, then stops the worker.
- `abort` fails every item not yet answered at once, queued or in the running batch (a stop whose
  drain time is over); the running `process` call cannot be interrupted, its results are dropped.
"""

import asyncio
import time
from concurrent.futures import Executor
from typing import Callable, Generic, List, Optional, Sequence, Tuple, TypeVar, Union

T = TypeVar("T")
R = TypeVar("R")
Outcome = Union[R, BaseException]


class QueueFull(Exception):
    """The queue has no room for all of a request's items."""


class QueueClosed(Exception):
    """The batcher is closing (the server is stopping) and takes no new items."""


class DynamicBatcher(Generic[T, R]):
    """Gathers items submitted concurrently into batches for `process`, run in `executor`.

    process (Callable[[List[T]], List[R]]): one result per item, in order; runs in the executor.
    executor (Executor): where `process` runs (one worker thread).
    max_batch (int): most items per `process` call.
    max_wait_ms (float): how long after its oldest item was queued a batch waits to fill.
    max_queue (int): most items waiting (not yet in a batch).
    on_batch (Optional[Callable[[int, float], None]]): called on the event loop with each
        batch's size and the seconds `process` took.
    """

    def __init__(
        self,
        process: Callable[[List[T]], List[R]],
        executor: Executor,
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Optional[Callable[[int, float], None]] = None,
    ) -> None:
        self.process = process
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: "asyncio.Queue[Tuple[T, asyncio.Future, float]]" = asyncio.Queue(maxsize=max_queue)
        self._filled = asyncio.Event()
        self._wanted = 0
        self._closed = False
        self._aborted = False
        self._running: List[Tuple[T, asyncio.Future, float]] = []
        self._worker: Optional[asyncio.Task] = None

    @property
    def depth(self) -> int:
        """Items waiting for a batch."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="dynamic-batcher")
        self._worker.add_done_callback(self._worker_stopped)

    def _worker_stopped(self, worker: asyncio.Task) -> None:
        """A worker that stopped on its own (a bug) fails what is queued, and the batcher takes nothing more."""
        if worker.cancelled() or worker.exception() is None:
            return
        self.abort(QueueClosed(f"the batching worker stopped: {worker.exception()!r}"))

    async def submit(self, items: Sequence[T]) -> List[Outcome]:
        """Queue `items` and wait for their results.

        items (Sequence[T]): one request's items.
        RETURNS (List[Union[R, BaseException]]): per item, its result, or the exception `process` raised on it.
        Raises `QueueFull` when the queue cannot take them all, `QueueClosed` once `close` was called.
        """
        if self._closed:
            raise QueueClosed("the server is stopping")
        if self._queue.qsize() + len(items) > self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} texts are waiting (the queue holds {self.max_queue})")
        loop = asyncio.get_running_loop()
        now = loop.time()
        futures = [loop.create_future() for _ in items]
        for item, future in zip(items, futures):
            self._queue.put_nowait((item, future, now))  # no await between the check and here: it fits
        if self._queue.qsize() >= self._wanted:
            self._filled.set()
        return await asyncio.gather(*futures, return_exceptions=True)

    def abort(self, error: BaseException) -> int:
        """Take no new items and fail every item not answered yet with `error`.

        error (BaseException): what each waiting `submit` gets, in its item's place.
        RETURNS (int): the number of items failed.
        """
        self._closed = self._aborted = True
        failed = 0
        while not self._queue.empty():
            _, future, _ = self._queue.get_nowait()
            self._queue.task_done()
            if not future.done():
                future.set_exception(error)
                failed += 1
        for _, future, _ in self._running:
            if not future.done():
                future.set_exception(error)
                failed += 1
        return failed

    async def close(self) -> None:
        """Take no new items, finish the queued ones (unless aborted), stop the worker."""
        self._closed = True
        if not self._aborted:
            await self._queue.join()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            await self._wait_to_fill(loop, deadline=batch[0][2] + self.max_wait)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._run_batch(loop, [entry for entry in batch if not entry[1].done()])
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _wait_to_fill(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Wait until `max_batch - 1` more items are queued or the deadline passes."""
        self._wanted = self.max_batch - 1
        while self._queue.qsize() < self._wanted and not self._closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._filled.clear()
            try:
                await asyncio.wait_for(self._filled.wait(), remaining)
            except asyncio.TimeoutError:
                break

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: List[Tuple[T, asyncio.Future, float]]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        self._running = batch
        try:
            outcomes = await loop.run_in_executor(self.executor, self._process_each, [entry[0] for entry in batch])
        except asyncio.CancelledError:
            for _, future, _ in batch:
                future.cancel()
            raise
        except Exception as err:  # the executor itself failed: every item of the batch gets the error
            outcomes = [err] * len(batch)
        finally:
            self._running = []
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - start)
        for (_, future, _), outcome in zip(batch, outcomes):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _process_each(self, items: List[T]) -> List[Outcome]:
        """`process(items)`; if it raises, each item alone, so that only the items that raise fail."""
        try:
            results = self.process(items)
        except Exception as err:
            if len(items) == 1:
                return [err]
            return [self._process_each([item])[0] for item in items]
        if len(results) != len(items):
            raise RuntimeError(f"process returned {len(results)} results for {len(items)} items")
        return list(results)
