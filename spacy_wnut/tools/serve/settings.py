"""The server's settings (`ServeSettings`, what `spacy wnut serve`'s options set) and its constants."""

import logging
import resource
from dataclasses import dataclass
from typing import Dict, Optional

from ...errors import ConfigError
from ...pipeline.engines import ENGINES

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


def default_max_connections() -> int:
    """The open-file limit less `RESERVED_FDS` (at least 16): past it, the server makes room."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(16, soft - RESERVED_FDS)
