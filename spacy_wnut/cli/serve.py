"""`serve`: a pipeline over HTTP."""

import logging
import os
import sys
from typing import Optional

import typer

from ._util import (
    Arg,
    CodeOpt,
    EngineOpt,
    Opt,
    app,
    user_errors,
)


@app.command("serve")
@user_errors
def serve_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name (a run-time pipeline needs no torch)"),
    host: str = Opt("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = Opt(8080, "--port", min=1, max=65535),
    engine: EngineOpt = None,
    max_batch: int = Opt(64, "--max-batch", min=1, help="most texts per nlp.pipe call"),
    max_wait_ms: float = Opt(5.0, "--max-wait-ms", min=0.0, help="how long a batch waits to fill, in ms"),
    max_queue: int = Opt(1024, "--max-queue", min=1, help="most texts waiting; a request that does not fit gets 503"),
    max_texts: int = Opt(256, "--max-texts", min=1, help="most texts in one request (413 above)"),
    max_body_bytes: int = Opt(1_048_576, "--max-body-bytes", min=1, help="largest request body (413 above)"),
    max_length: Optional[int] = Opt(
        None, "--max-length", min=1, help="longest text in characters, 413 above (default: the pipeline's max_length)"
    ),
    threads: Optional[int] = Opt(None, "--threads", min=1, help="CPU threads of the forward pass"),
    no_batching: bool = Opt(False, "--no-batching", help="tag one text per nlp call (to compare)"),
    drain_timeout: int = Opt(
        30, "--drain-timeout", min=0, help="seconds a stop waits for requests in flight (then: 503, exit 1)"
    ),
    read_timeout: float = Opt(
        30.0, "--read-timeout", min=0.001, help="seconds to send a request's head, then its body (408)"
    ),
    keep_alive_timeout: float = Opt(5.0, "--keep-alive-timeout", min=0.001, help="seconds an idle connection stays"),
    request_timeout: float = Opt(
        60.0, "--request-timeout", min=0.001, help="seconds from a request's body to its answer (then 503)"
    ),
    max_connections: Optional[int] = Opt(
        None, "--max-connections", min=1, help="most open connections (default: the open-file limit less 192)"
    ),
    mmap_threshold: int = Opt(
        1_048_576, "--mmap-threshold", min=0, help="glibc M_MMAP_THRESHOLD in bytes, keeps RSS flat (0: glibc's own)"
    ),
    code: CodeOpt = None,
    access_log: bool = Opt(True, "--access-log/--no-access-log", help="log one line per request"),
) -> None:
    """Serve a pipeline over HTTP: POST /v1/entities with dynamic batching; /health, /ready, /metrics, /docs.
    SIGTERM or SIGINT drains the requests in flight and exits 0 (1 if some got 503 after --drain-timeout)."""
    from ..errors import require

    require("spacy wnut serve", ["fastapi", "uvicorn", "prometheus_client"], "serve")
    from spacy.cli._util import import_code

    from ..tools.serve import ServeSettings, serve

    import_code(code)
    settings = ServeSettings(
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_texts=max_texts,
        max_body_bytes=max_body_bytes,
        max_length=max_length,
        threads=threads,
        engine=engine,
        batching=not no_batching,
        drain_timeout=drain_timeout,
        read_timeout=read_timeout,
        keep_alive_timeout=keep_alive_timeout,
        request_timeout=request_timeout,
        max_connections=max_connections,
        mmap_threshold=mmap_threshold,
    )
    stopped = serve(model, settings, host=host, port=port, access_log=access_log)
    status = 1 if stopped.unanswered else 0
    if stopped.worker_busy:  # a batch nobody waits for: do not wait for it at exit
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if status:
        raise typer.Exit(status)
