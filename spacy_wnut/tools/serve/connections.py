"""Connections of `spacy wnut serve`: uvicorn's h11 protocol with a deadline for each request's head
and a bound on open connections.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a connection that never
sends a request, or sends its head a byte at a time, stays open for ever: enough of them exhaust the
open-file limit, and then the server answers nobody. Here, as with nginx's `client_header_timeout`:

- a connection must send a complete request head within `read_timeout` seconds of opening (or of its
  previous answer, once it sends the first byte of the next request); it is closed otherwise;
- at `max_connections` open connections, each new one closes the longest idle one (open, no request
  in progress); with none idle, the new one is closed at once.

Both are counted in `spacy_wnut_connections_closed_total{reason}`. The request body's own deadline
is `serve.RequestGuard`'s.
"""

import asyncio
import logging
import time
from typing import Any, Optional, Type

import h11
from prometheus_client import Counter
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("spacy_wnut.serve")
WARN_EVERY_SECONDS = 10.0


def guarded_protocol(read_timeout: float, max_connections: int, closed: Counter) -> Type[H11Protocol]:
    """uvicorn's `H11Protocol` with a request-head deadline and a connection bound, for `uvicorn.Config(http=...)`.

    read_timeout (float): seconds a connection has to send a complete request head.
    max_connections (int): most open connections.
    closed (Counter): counts the connections closed here, by `reason` (`head_timeout`, `idle_for_room`, `full`).
    RETURNS (Type[H11Protocol]): the protocol class.
    """
    last_warning = [0.0]

    def warn(message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - last_warning[0] >= WARN_EVERY_SECONDS:  # at most one line per 10 s, however many
            last_warning[0] = now
            logger.warning(message, *args)

    class GuardedH11Protocol(H11Protocol):
        _head_deadline: Optional[asyncio.TimerHandle] = None
        _idle_since: float = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._idle_since = time.monotonic()
            self._arm_head_deadline()
            if len(self.connections) > max_connections:
                self._make_room()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                if self._head_deadline is None:  # the first bytes of a request head
                    self._arm_head_deadline()
            else:
                self._disarm_head_deadline()

        def on_response_complete(self) -> None:
            self._idle_since = time.monotonic()
            self._disarm_head_deadline()  # uvicorn's keep-alive timeout takes over
            super().on_response_complete()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        @property
        def idle(self) -> bool:
            """Open without a request in progress (nothing received, or its answer sent)."""
            return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._head_deadline = self.loop.call_later(read_timeout, self._head_timed_out)

        def _disarm_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                closed.labels("head_timeout").inc()
                self.transport.close()

        def _make_room(self) -> None:
            idle = [
                c
                for c in self.connections
                if c is not self and getattr(c, "idle", False) and not c.transport.is_closing()
            ]
            if idle:
                oldest = min(idle, key=lambda c: c._idle_since)
                closed.labels("idle_for_room").inc()
                oldest.transport.close()
                warn("%d connections open (--max-connections): closed the longest idle one", max_connections)
            else:
                closed.labels("full").inc()
                self.transport.close()
                warn("%d connections open (--max-connections), none idle: refused a new one", max_connections)

    return GuardedH11Protocol
