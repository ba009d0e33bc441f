"""The ASGI middleware in front of the entities path: body limits and timeouts, client-gone cancelling, counting."""

import asyncio
from typing import Optional

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BodyTooLarge, ClientGone, ServeError
from .metrics import ServeMetrics


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
