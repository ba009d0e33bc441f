"""The dynamic batcher on its own (an event loop, a worker thread, a fake `process`): batches, order,
admission, failures retried item by item, cancelled items skipped, draining on close."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from spacy_wnut.tools.serve.batching import DynamicBatcher, QueueClosed, QueueFull


class Recorder:
    """A `process` that records its batches, raises on "bad", and can be held until released."""

    def __init__(self) -> None:
        self.batches = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, items):
        self.started.set()
        self.release.wait(10)
        self.batches.append(list(items))
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]


async def hold(batcher, recorder, item):
    """Submit `item` and wait until its batch runs, held there until `recorder.release` is set."""
    recorder.release.clear()
    held = asyncio.ensure_future(batcher.submit([item]))
    await asyncio.to_thread(recorder.started.wait, 10)
    return held


def run_with(process, scenario, **limits):
    """Run `scenario(batcher)` on a fresh event loop with a one-thread executor."""
    settings = {"max_batch": 8, "max_wait_ms": 20.0, "max_queue": 64, **limits}

    async def main():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = DynamicBatcher(process, executor, **settings)
            batcher.start()
            try:
                return await scenario(batcher)
            finally:
                await batcher.close()

    return asyncio.run(main())


def test_concurrent_requests_share_a_batch_and_get_their_own_results_in_order():
    recorder = Recorder()

    async def scenario(batcher):
        return await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["c"]), batcher.submit(["d", "e"]))

    assert run_with(recorder, scenario) == [["A", "B"], ["C"], ["D", "E"]]
    assert recorder.batches == [["a", "b", "c", "d", "e"]]


def test_batches_hold_at_most_max_batch_items():
    recorder = Recorder()

    async def scenario(batcher):
        return await asyncio.gather(*(batcher.submit([str(i)]) for i in range(7)))

    assert run_with(recorder, scenario, max_batch=3) == [[str(i)] for i in range(7)]
    assert [len(batch) for batch in recorder.batches] == [3, 3, 1]


def test_items_queued_while_a_batch_runs_form_the_next_batch_without_waiting():
    recorder = Recorder()

    async def scenario(batcher):
        first = await hold(batcher, recorder, "first")
        rest = [asyncio.ensure_future(batcher.submit([f"r{i}"])) for i in range(4)]
        await asyncio.sleep(0)
        recorder.release.set()
        return await first, await asyncio.gather(*rest)

    run_with(recorder, scenario, max_wait_ms=0.0)
    assert recorder.batches == [["first"], ["r0", "r1", "r2", "r3"]]


def test_failing_batch_is_retried_item_by_item_so_only_the_bad_item_fails():
    recorder = Recorder()

    async def scenario(batcher):
        return await asyncio.gather(batcher.submit(["a"]), batcher.submit(["b", "bad"]), batcher.submit(["c"]))

    good, mixed, other = run_with(recorder, scenario)
    assert good == ["A"] and other == ["C"]
    assert mixed[0] == "B" and isinstance(mixed[1], ValueError)
    assert recorder.batches[0] == ["a", "b", "bad", "c"] and recorder.batches[1:] == [["a"], ["b"], ["bad"], ["c"]]


def test_request_that_does_not_fit_is_refused_whole():
    recorder = Recorder()

    async def scenario(batcher):
        held = await hold(batcher, recorder, "held")
        queued = asyncio.ensure_future(batcher.submit(["x", "y", "z"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(["one", "two"])
        depth = batcher.depth
        recorder.release.set()
        return depth, await held, await queued

    assert run_with(recorder, scenario, max_queue=4) == (3, ["HELD"], ["X", "Y", "Z"])
    assert all("one" not in batch for batch in recorder.batches)


def test_items_of_a_cancelled_request_are_not_processed():
    recorder = Recorder()

    async def scenario(batcher):
        held = await hold(batcher, recorder, "held")
        gone = asyncio.ensure_future(batcher.submit(["gone"]))
        kept = asyncio.ensure_future(batcher.submit(["kept"]))
        await asyncio.sleep(0)
        gone.cancel()
        recorder.release.set()
        return await held, await kept

    assert run_with(recorder, scenario) == (["HELD"], ["KEPT"])
    assert recorder.batches == [["held"], ["kept"]]


def test_close_finishes_queued_items_then_refuses_new_ones():
    recorder = Recorder()

    async def scenario(batcher):
        first = await hold(batcher, recorder, "a")
        pending = [first] + [asyncio.ensure_future(batcher.submit([c])) for c in "bc"]
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0)
        with pytest.raises(QueueClosed):
            await batcher.submit(["late"])
        recorder.release.set()
        await closing
        return await asyncio.gather(*pending)

    assert run_with(recorder, scenario) == [["A"], ["B"], ["C"]]


def test_abort_fails_queued_and_running_items_at_once_and_close_does_not_wait_for_the_batch():
    recorder = Recorder()

    async def scenario(batcher):
        held = await hold(batcher, recorder, "running")
        queued = asyncio.ensure_future(batcher.submit(["queued-1", "queued-2"]))
        await asyncio.sleep(0.05)
        failed = batcher.abort(QueueClosed("drain timeout"))
        outcomes = await asyncio.wait_for(asyncio.gather(held, queued), 2)
        with pytest.raises(QueueClosed):
            await batcher.submit(["late"])
        await asyncio.wait_for(batcher.close(), 2)  # the batch still runs: close does not wait for it
        recorder.release.set()
        return failed, outcomes

    failed, (held, queued) = run_with(recorder, scenario)
    assert failed == 3
    assert all(isinstance(o, QueueClosed) and str(o) == "drain timeout" for o in held + queued)
