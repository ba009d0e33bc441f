"""`spacy wnut serve`: a pipeline behind HTTP (FastAPI on uvicorn), with dynamic batching.

`POST /v1/entities` takes `{"text": ...}` or `{"texts": [...]}` (plus an
optional `"id"` and `"min_score"`) and answers `{"id": ..., "results": [...]}`: per text, the
row `annotate` writes to JSONL (`source` is the request's id, `line` the
text's position from 1, then `text` and `entities` with character offsets,
label, text and score). Texts of concurrent requests are tagged together in
one `nlp.pipe` call (`batching.DynamicBatcher`), in one worker thread.

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

from .app import create_app
from .process import Stopped, serve
from .settings import ServeSettings

__all__ = ["ServeSettings", "Stopped", "create_app", "serve"]
