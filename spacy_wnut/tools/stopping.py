"""Stopping a long run cleanly on Ctrl-C (SIGINT) or SIGTERM, worker processes included.

`nlp.pipe(n_process=N)` forks workers that block on full pipes when the main
process stops reading, and outlive it when it is terminated. While
`stop_on_signals()` is active, the first SIGINT or SIGTERM only sets a flag
that the run checks between records, and terminates the worker processes at
once, so the main process wakes from any wait; the run then writes what it
has and exits. Workers forked meanwhile ignore SIGINT (the main process
stops them) and die with their parent.

The queues that feed the workers are released too: a queue's feeder thread
may be blocked writing a batch larger than the pipe holds to a worker that is
gone, and multiprocessing would join that thread at exit for ever.
"""

import ctypes
import multiprocessing
import os
import signal
from contextlib import contextmanager
from typing import Iterator, Optional

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_ACTIVE = False
_PR_SET_PDEATHSIG = 1


class StopRequest:
    """Set by the first SIGINT or SIGTERM while `stop_on_signals()` is active."""

    def __init__(self) -> None:
        self.signal: Optional[int] = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number."""
        return 128 + int(self.signal or 0)


def terminate_workers(grace: float = 3.0) -> None:
    """Terminate this process's multiprocessing children; kill those still alive after `grace` seconds."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(grace)
        if child.is_alive():
            child.kill()
            child.join(1.0)


def release_queue_feeders() -> int:
    """Let the process exit without joining the feeder threads of its multiprocessing queues.

    Called once the workers are stopped: a feeder blocked on a full pipe that
    no process reads any more would otherwise keep the process from exiting
    (multiprocessing joins it at exit). What it had not sent is not needed.
    The queues are found through the garbage collector: `nlp.pipe` keeps
    them to itself. RETURNS (int): the number of queues released.
    """
    import gc
    from multiprocessing.queues import Queue

    queues = [obj for obj in gc.get_objects() if isinstance(obj, Queue)]
    for queue in queues:
        queue.cancel_join_thread()
    return len(queues)


def _in_forked_worker() -> None:
    if not _ACTIVE:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:  # Linux: die with the parent, even if it is killed outright
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


os.register_at_fork(after_in_child=_in_forked_worker)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn the first SIGINT/SIGTERM into a `StopRequest` (and stopped workers); a second one
    acts as usual. Outside the main thread, nothing is installed."""
    global _ACTIVE
    stop = StopRequest()
    try:
        previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    except ValueError:
        yield stop
        return

    def handle(signum, frame) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop.signal = signum
        terminate_workers()
        release_queue_feeders()

    try:
        for sig in _SIGNALS:
            signal.signal(sig, handle)
    except ValueError:  # not the main thread
        yield stop
        return
    _ACTIVE = True
    try:
        yield stop
    finally:
        _ACTIVE = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
