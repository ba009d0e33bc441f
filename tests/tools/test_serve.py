"""`spacy wnut serve` as a real server process on 127.0.0.1, talked to over HTTP (httpx): results as
`annotate` writes them, dynamic batching, bad requests refused, a failing text failing its request
alone, a full queue, readiness, and a graceful stop on SIGTERM/SIGINT."""

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import spacy

from spacy_wnut.cli import main
from spacy_wnut.tools.annotate import annotate

from ..util import TRAIN_DATA, wnut_command

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

pytestmark = pytest.mark.slow  # real server processes

HOOKS = Path(__file__).with_name("serve_hooks.py")
TEXTS = [text for text, _ in TRAIN_DATA]
# The module's server: small limits, so that each is cheap to exceed.
LIMITS = ["--max-body-bytes", "4096", "--max-length", "200", "--max-texts", "8", "--max-queue", "128"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `spacy wnut serve` process on a free port of 127.0.0.1, its output in a log file."""

    def __init__(self, model: Path, folder: Path, *args, env=None, **popen) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"server-{self.port}.log"
        command = wnut_command("serve", model, "--port", self.port, "--code", HOOKS, "--no-access-log", *args)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, **popen
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, path: str = "/ready", timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited {self.proc.returncode}:\n{self.output()[-3000:]}"
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} not 200 within {timeout} s:\n{self.output()[-3000:]}")

    def metric(self, name: str) -> float:
        """A sample's value (0 for a labelled sample not yet counted)."""
        found = re.search(rf"^{re.escape(name)} (\S+)$", httpx.get(self.url + "/metrics").text, re.M)
        return float(found.group(1)) if found else 0.0

    def wait_for_metric(self, name: str, value: float, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.metric(name) != value:
            assert time.monotonic() < deadline, f"{name} never reached {value} (it is {self.metric(name)})"
            time.sleep(0.02)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(60)


@contextmanager
def running(model: Path, folder: Path, *args, env=None, wait: str = "/ready", **popen):
    server = Server(model, folder, *args, env=env, **popen)
    try:
        server.wait_for(wait)
        yield server
    finally:
        server.stop()


def wait_for_file(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


async def post_all(url: str, bodies, clients: int = 16):
    """POST each body to /v1/entities from `clients` concurrent clients; the responses, in order."""
    queue = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    responses = [None] * len(bodies)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while not queue.empty():
                i, body = queue.get_nowait()
                responses[i] = await http.post("/v1/entities", json=body)

    await asyncio.gather(*(client() for _ in range(clients)))
    return responses


async def holding(http, folder: Path, name: str):
    """POST `HOLD:name` (id "held"): its batch holds the worker (`serve_hooks`) until `name.release` exists.
    RETURNS the pending answer, once the batch runs."""
    held = asyncio.ensure_future(http.post("/v1/entities", json={"text": f"HOLD:{name}", "id": "held"}))
    await asyncio.to_thread(wait_for_file, folder / f"{name}.held")
    return held


def post(url: str, **kwargs):
    return httpx.post(url + "/v1/entities", timeout=60, **kwargs)


def error_of(response):
    return response.json()["error"]


@pytest.fixture(scope="module")
def hooks_model(model_dir, tmp_path_factory) -> Path:
    """`model_dir` with the test component `serve_test_hooks` after its `wnut_ner` (a no-op but for markers)."""
    from . import serve_hooks  # noqa: F401  (registers the factory in this process too)

    nlp = spacy.load(model_dir)
    nlp.add_pipe("serve_test_hooks")
    path = tmp_path_factory.mktemp("hooks-model")
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def hooks_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hooks")


@pytest.fixture(scope="module")
def server(hooks_model, hooks_dir, tmp_path_factory):
    with running(hooks_model, tmp_path_factory.mktemp("logs"), *LIMITS, env={"SERVE_HOOKS_DIR": str(hooks_dir)}) as s:
        yield s


def many_texts(n: int = 200):
    """`n` texts: the training sentences, their combinations and odd ones (empty, spaces, emoji, long)."""
    rng = random.Random(0)
    odd = ["", "   ", "tom hanks 🎬 in new york!!", "NEW YORK NEW YORK", "apple inc " * 10]
    texts = list(TEXTS) + odd
    while len(texts) < n:
        a, b = rng.sample(TEXTS, 2)
        texts.append(f"{a} and {b}" if rng.random() < 0.5 else f"{a}. {b.lower()}")
    return texts[:n]


def requests_of(texts, seed: int = 0):
    """The texts cut into requests of 1 to 8 texts, half of the single ones as `text`; each with an id."""
    rng = random.Random(seed)
    bodies, i = [], 0
    while i < len(texts):
        k = rng.randint(1, 8)
        chunk = texts[i : i + k]
        body = {"text": chunk[0]} if len(chunk) == 1 and rng.random() < 0.5 else {"texts": chunk}
        body["id"] = f"r{len(bodies)}" if rng.random() < 0.5 else len(bodies)
        bodies.append(body)
        i += k
    return bodies


def test_200_texts_from_16_clients_get_annotates_rows_in_batches(server, hooks_model, tmp_path):
    texts = many_texts(200)
    bodies = requests_of(texts)
    batches_before = server.metric("spacy_wnut_batch_size_count")
    responses = asyncio.run(post_all(server.url, bodies, clients=16))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    annotate(hooks_model, source, tmp_path / "out.jsonl", progress=False)
    expected = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    served = []
    for body, response in zip(bodies, responses):
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["id"] == body["id"] and response.headers["x-request-id"] == str(body["id"])
        rows = answer["results"]
        assert [(r["source"], r["line"]) for r in rows] == [(str(body["id"]), n) for n in range(1, len(rows) + 1)]
        served.extend(rows)
    assert [r["text"] for r in served] == texts
    assert all(set(row) == set(want) for row, want in zip(served, expected))  # the same record schema
    assert spans_of(served) == spans_of(expected) and any(spans_of(served))
    assert scores_of(served) == pytest.approx(scores_of(expected), abs=1e-5)
    batches = server.metric("spacy_wnut_batch_size_count") - batches_before
    assert batches < len(texts)  # texts of concurrent requests shared nlp.pipe calls


BAD_BODIES = [
    (b'{"texts": ["ok"', 400, "invalid_json", "body"),
    (b"\xff\xfe not utf-8", 400, "invalid_json", "body"),
    (b'{"text": 5}', 422, "invalid_field", "text"),
    (b'{"texts": ["ok", 5]}', 422, "invalid_field", "texts.1"),
    (b'{"texts": "not a list"}', 422, "invalid_field", "texts"),
    (b'{"texts": []}', 422, "invalid_field", "texts"),
    (b'{"txt": "typo"}', 422, "invalid_field", "txt"),
    (b'{"text": "a", "texts": ["b"]}', 422, "invalid_field", "body"),
    (b"{}", 422, "invalid_field", "body"),
    (b'["a list"]', 422, "invalid_field", "body"),
    (b'{"text": "ok", "id": 1.5}', 422, "invalid_field", "id"),
    (b'{"text": "lone \\ud800 surrogate"}', 422, "invalid_text", "text"),
    (b'{"texts": ' + b"[" * 1500 + b"]" * 1500 + b"}", 400, "invalid_json", "body"),  # past the recursion limit
    ('{"text": "Tom Hanks"}'.encode("utf-16"), 400, "invalid_json", "body"),
    (b'{"text": "ok", "id": "\\ud800"}', 422, "invalid_field", "id"),
    (b'{"text": "ok", "id": "a\\r\\nX-Injected: 1"}', 422, "invalid_field", "id"),
    (b'{"text": "ok", "id": "' + b"i" * 257 + b'"}', 422, "invalid_field", "id"),
]


@pytest.mark.parametrize(
    "body,status,kind,field", BAD_BODIES, ids=[b[0][:40].decode("utf-8", "replace") for b in BAD_BODIES]
)
def test_bad_body_is_refused_with_the_field_named(server, body, status, kind, field):
    response = post(server.url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert error_of(response)["type"] == kind and error_of(response)["field"] == field


@pytest.mark.parametrize("request_id", ["日本", "🎬 clip", "100% sure", "ok-1", 2**62])
def test_any_id_is_answered_and_carried_percent_encoded_in_its_header(server, request_id):
    from urllib.parse import unquote

    response = post(server.url, json={"text": "Tom Hanks", "id": request_id})
    assert response.status_code == 200 and response.json()["id"] == request_id
    header = response.headers["x-request-id"]
    assert header.isascii() and header.isprintable() and unquote(header) == str(request_id)
    if request_id in ("ok-1", 2**62):
        assert header == str(request_id)


def test_body_read_as_json_whatever_its_content_type(server):
    response = post(server.url, content=b'{"text": "Tom Hanks"}', headers={"content-type": "text/plain"})
    assert response.status_code == 200 and response.json()["results"][0]["text"] == "Tom Hanks"


def test_body_over_the_limit_is_413_by_its_content_length(server):
    response = post(server.url, json={"text": "x" * 5000})
    assert response.status_code == 413 and error_of(response)["field"] == "body"


def test_streamed_body_over_the_limit_is_413(server):
    def chunks():  # no Content-Length: the server counts the bytes as they come
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = post(server.url, content=chunks())
    assert response.status_code == 413 and error_of(response)["field"] == "body"


def test_text_over_max_length_is_413_naming_the_text(server):
    response = post(server.url, json={"texts": ["short", "y" * 201], "id": "long"})
    assert response.status_code == 413 and response.json()["id"] == "long"
    assert error_of(response)["field"] == "texts.1" and "200" in error_of(response)["message"]


def test_more_texts_than_max_texts_is_413(server):
    response = post(server.url, json={"texts": ["a"] * 9})
    assert response.status_code == 413 and error_of(response)["field"] == "texts"


def test_text_that_makes_the_pipeline_raise_fails_its_request_alone(server, hooks_dir):
    """The bad text shares a batch with good ones (held back until all are queued): the batch is
    retried text by text, the bad request gets 500 naming its text, the others their results."""
    failed_before = server.metric("spacy_wnut_failed_texts_total")

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            held = await holding(http, hooks_dir, "raise")
            bad = {"texts": [TEXTS[0], "this one should RAISE"], "id": "bad-1"}
            bodies = [{"texts": TEXTS, "id": "good-1"}, bad, {"text": TEXTS[1], "id": "good-2"}]
            sent = [asyncio.ensure_future(http.post("/v1/entities", json=body)) for body in bodies]
            await asyncio.to_thread(server.wait_for_metric, "spacy_wnut_queue_depth", len(TEXTS) + 3)
            (hooks_dir / "raise.release").touch()
            return await held, await asyncio.gather(*sent)

    held, (good_1, bad, good_2) = asyncio.run(scenario())
    assert held.status_code == good_1.status_code == good_2.status_code == 200
    assert [r["text"] for r in good_1.json()["results"]] == TEXTS
    assert good_2.json()["results"][0]["entities"][0]["text"] == "Tom Hanks"
    assert bad.status_code == 500 and bad.json()["id"] == "bad-1"
    assert error_of(bad)["type"] == "pipeline_error" and error_of(bad)["field"] == "texts.1"
    assert server.metric("spacy_wnut_failed_texts_total") == failed_before + 1
    assert post(server.url, json={"text": TEXTS[2]}).status_code == 200  # still serving
    log = server.output()
    assert "request bad-1: the pipeline raised on text 1" in log and "RuntimeError: serve_test_hooks raised" in log


def test_full_queue_answers_503_with_retry_after(server, hooks_dir):
    """While a batch is held, 16 requests of 8 texts fill the queue of 128 texts: one more is refused."""
    refused_before = server.metric('spacy_wnut_requests_total{status="503"}')

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            held = await holding(http, hooks_dir, "full")
            bodies = [{"texts": [TEXTS[i % 4]] * 8} for i in range(16)]
            queued = [asyncio.ensure_future(http.post("/v1/entities", json=body)) for body in bodies]
            await asyncio.to_thread(server.wait_for_metric, "spacy_wnut_queue_depth", 128)
            refused = await http.post("/v1/entities", json={"text": TEXTS[2]})
            (hooks_dir / "full.release").touch()
            return refused, await held, await asyncio.gather(*queued)

    refused, held, queued = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert error_of(refused)["type"] == "queue_full"
    assert held.status_code == 200 and all(r.status_code == 200 and len(r.json()["results"]) == 8 for r in queued)
    assert server.metric('spacy_wnut_requests_total{status="503"}') == refused_before + 1


def test_ready_is_503_while_the_pipeline_loads_and_health_answers(hooks_model, tmp_path):
    gate = tmp_path / "load"
    with running(hooks_model, tmp_path, env={"SERVE_HOOKS_LOAD_GATE": str(gate)}, wait="/health") as server:
        ready = httpx.get(server.url + "/ready")
        assert ready.status_code == 503 and "retry-after" in ready.headers
        assert post(server.url, json={"text": "too early"}).status_code == 503
        gate.touch()
        server.wait_for("/ready")
        assert post(server.url, json={"text": TEXTS[1]}).json()["results"][0]["entities"][0]["label"] == "person"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_drains_the_requests_in_flight_and_exits_0(hooks_model, tmp_path, stop):
    bodies = [{"texts": TEXTS, "id": i} if i % 2 else {"text": TEXTS[i % 4], "id": i} for i in range(7)]
    server = Server(hooks_model, tmp_path, env={"SERVE_HOOKS_DIR": str(tmp_path)})
    try:
        server.wait_for("/ready")

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                held = await holding(http, tmp_path, "stop")
                sent = [asyncio.ensure_future(http.post("/v1/entities", json=body)) for body in bodies]
                n_texts = sum(len(b.get("texts", [0])) for b in bodies)
                await asyncio.to_thread(server.wait_for_metric, "spacy_wnut_queue_depth", n_texts)
                server.proc.send_signal(stop)
                await asyncio.to_thread(refused_within, server.url, 10.0)  # no new connection is accepted
                (tmp_path / "stop.release").touch()
                return await held, await asyncio.gather(*sent)

        held, answers = asyncio.run(scenario())
        assert server.proc.wait(60) == 0
    finally:
        server.stop()
    assert held.status_code == 200
    for body, answer in zip(bodies, answers):
        assert answer.status_code == 200 and answer.json()["id"] == body["id"]
        assert [r["text"] for r in answer.json()["results"]] == body.get("texts", [body.get("text")])
    assert f"stopped by {stop.name}" in server.output()


def refused_within(url: str, timeout: float) -> None:
    """Return once a new request to `url` is not served: its connection is refused, or, opened just before
    the listening socket closed, closed (or reset) before its request was read, as uvicorn does to idle ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} still accepts connections {timeout} s after the signal")


# On PYTHONPATH, Python as the run-time install has it: no torch, transformers or spacy-transformers.
RUNTIME_INSTALL = Path(__file__).parents[1] / "fixtures" / "runtime_install"


def test_runtime_pipeline_is_served_without_torch_with_the_entities_of_its_source(trained_nlp, server, tmp_path):
    from spacy_wnut.tools.runtime_export import build_runtime

    build_runtime(trained_nlp).to_disk(tmp_path / "runtime")
    path = os.pathsep.join([str(RUNTIME_INSTALL), os.environ.get("PYTHONPATH", "")])
    no_torch = subprocess.run([sys.executable, "-c", "import torch"], env={**os.environ, "PYTHONPATH": path})
    assert no_torch.returncode != 0  # the simulated run-time install has no torch
    with running(tmp_path / "runtime", tmp_path, env={"PYTHONPATH": path}) as runtime:
        served = post(runtime.url, json={"texts": TEXTS}).json()["results"]
    expected = post(server.url, json={"texts": TEXTS}).json()["results"]
    assert spans_of(served) == spans_of(expected) and any(spans_of(served))
    assert scores_of(served) == pytest.approx(scores_of(expected), abs=1e-4)


def spans_of(rows):
    return [[(e["start"], e["end"], e["label"], e["text"]) for e in row["entities"]] for row in rows]


def scores_of(rows):
    return [e["score"] for row in rows for e in row["entities"]]


def test_openapi_documents_the_request_and_the_answer(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    entities = spec["paths"]["/v1/entities"]["post"]
    assert entities["requestBody"]["content"]["application/json"]["schema"]["properties"].keys() >= {"text", "texts"}
    assert {"200", "400", "413", "422", "500", "503"} <= set(entities["responses"])
    assert httpx.get(server.url + "/docs").status_code == 200


def test_metrics_are_prometheus_text(server):
    response = httpx.get(server.url + "/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    for name in ("spacy_wnut_requests_total", "spacy_wnut_request_seconds_bucket", "spacy_wnut_texts_total"):
        assert name in response.text
    assert "spacy_wnut_batch_size_bucket" in response.text and "spacy_wnut_queue_depth" in response.text


def test_max_texts_over_max_queue_is_refused_before_serving(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--max-texts", "10", "--max-queue", "5"]) == 1
    assert "--max-texts 10 is more than --max-queue 5" in capsys.readouterr().err


def test_missing_server_packages_name_the_serve_extra(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else find_spec(name, *a)
    )
    assert main(["serve", str(tmp_path)]) == 1
    assert "pip install 'spacy-wnut[serve]'" in capsys.readouterr().err


def test_unloadable_pipeline_stops_the_server_with_one_line(tmp_path):
    result = subprocess.run(
        wnut_command("serve", tmp_path / "no-such-model", "--port", free_port()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("✘") and "no-such-model" in result.stderr


def test_cli_defaults_are_the_settings_defaults():
    import typer

    from spacy_wnut.cli import app
    from spacy_wnut.tools.serve import ServeSettings

    params = {p.name: p.default for p in typer.main.get_command(app).commands["serve"].params}
    settings = ServeSettings()
    for name in (
        "max_batch",
        "max_wait_ms",
        "max_queue",
        "max_texts",
        "max_body_bytes",
        "drain_timeout",
        "read_timeout",
        "keep_alive_timeout",
        "request_timeout",
        "max_connections",
        "mmap_threshold",
    ):
        assert params[name] == getattr(settings, name), name


def raw_connection(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection; fails if it is still open after `timeout`."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
    except socket.timeout:
        raise AssertionError(f"the connection is still open after {timeout} s (received {data[:200]!r})") from None
    finally:
        sock.close()


HEAD = b"POST /v1/entities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def test_connections_that_send_no_complete_request_are_closed_after_the_read_timeout(hooks_model, tmp_path):
    with running(hooks_model, tmp_path, "--read-timeout", "1", "--keep-alive-timeout", "1") as server:
        idle = [raw_connection(server) for _ in range(20)]
        slow_head = raw_connection(server)
        slow_head.sendall(HEAD)  # the head never ends
        slow_body = raw_connection(server)
        slow_body.sendall(HEAD + b'Content-Length: 100\r\n\r\n{"text": ')
        kept_alive = raw_connection(server)
        body = b'{"text": "Tom Hanks"}'
        kept_alive.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        start = time.monotonic()
        assert all(read_until_closed(sock, 10) == b"" for sock in [*idle, slow_head])
        late = read_until_closed(slow_body, 10)
        assert late.startswith(b"HTTP/1.1 408") and b'"timeout"' in late and b"--read-timeout" in late
        answered = read_until_closed(kept_alive, 10)  # answered, then closed once idle for 1 s
        assert answered.startswith(b"HTTP/1.1 200") and b"Tom Hanks" in answered
        assert time.monotonic() - start < 15  # read timeout 1 s (a loaded machine is slow to close 20)
        assert server.metric('spacy_wnut_connections_closed_total{reason="head_timeout"}') == 21
        assert post(server.url, json={"text": "Tom Hanks"}).status_code == 200
        assert server.metric('spacy_wnut_requests_total{status="408"}') == 1


def test_idle_connections_past_the_open_file_limit_do_not_stop_the_server(hooks_model, tmp_path):
    import resource

    def small_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with running(hooks_model, tmp_path, preexec_fn=small_limit) as server:
        idle = [raw_connection(server) for _ in range(300)]  # more than the server has file descriptors
        try:
            answer = post(server.url, json={"text": "Tom Hanks"})
            assert answer.status_code == 200 and answer.json()["results"][0]["entities"]
            assert server.metric('spacy_wnut_connections_closed_total{reason="idle_for_room"}') >= 200
        finally:
            for sock in idle:
                sock.close()
    log = server.output()
    assert "out of system resource" not in log and log.count("closed the longest idle one") <= 2


def test_client_gone_mid_body_is_counted_499(server):
    gone_before, failed_before = (server.metric(f'spacy_wnut_requests_total{{status="{s}"}}') for s in (499, 500))
    sock = raw_connection(server)
    sock.sendall(HEAD + b'Content-Length: 100\r\n\r\n{"text": ')
    sock.close()
    server.wait_for_metric('spacy_wnut_requests_total{status="499"}', gone_before + 1)
    assert server.metric('spacy_wnut_requests_total{status="500"}') == failed_before


def test_request_past_its_deadline_is_503_and_a_client_that_leaves_has_its_texts_dropped(hooks_model, tmp_path):
    env = {"SERVE_HOOKS_DIR": str(tmp_path)}
    with running(hooks_model, tmp_path, "--request-timeout", "2", env=env) as server:
        batches_before = server.metric("spacy_wnut_batch_size_count")

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                held = await holding(http, tmp_path, "deadline")
                async with httpx.AsyncClient(base_url=server.url, timeout=0.5) as impatient:
                    with pytest.raises(httpx.ReadTimeout):
                        await impatient.post("/v1/entities", json={"texts": ["left behind"] * 8})
                await asyncio.to_thread(server.wait_for_metric, 'spacy_wnut_requests_total{status="499"}', 1)
                answer = await held
                (tmp_path / "deadline.release").touch()
                return answer

        held = asyncio.run(scenario())
        assert held.status_code == 503 and error_of(held)["type"] == "timeout" and held.json()["id"] == "held"
        server.wait_for_metric("spacy_wnut_queue_depth", 0)
        assert post(server.url, json={"text": "Tom Hanks"}).status_code == 200
        # the held batch and the last request's: the 8 texts of the client that left were never tagged
        assert server.metric("spacy_wnut_batch_size_count") - batches_before == 2
        assert server.metric("spacy_wnut_batch_size_sum") == pytest.approx(2)


@pytest.mark.parametrize("second_sigint", [False, True], ids=["drain-timeout", "second-SIGINT"])
def test_stop_answers_503_to_what_is_left_after_the_drain_timeout_and_exits_1(hooks_model, tmp_path, second_sigint):
    drain = "60" if second_sigint else "2"
    env = {"SERVE_HOOKS_DIR": str(tmp_path), "SERVE_HOOKS_WAIT_SECONDS": "300"}  # the held batch never ends
    server = Server(hooks_model, tmp_path, "--drain-timeout", drain, env=env)
    try:
        server.wait_for("/ready")

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                held = await holding(http, tmp_path, "drain")
                queued = asyncio.ensure_future(http.post("/v1/entities", json={"texts": TEXTS, "id": "queued"}))
                await asyncio.to_thread(server.wait_for_metric, "spacy_wnut_queue_depth", len(TEXTS))
                signalled = time.monotonic()
                server.proc.send_signal(signal.SIGINT if second_sigint else signal.SIGTERM)
                if second_sigint:
                    await asyncio.sleep(0.5)
                    server.proc.send_signal(signal.SIGINT)
                answers = await asyncio.gather(held, queued)
                return answers, signalled

        answers, signalled = asyncio.run(scenario())
        status = server.proc.wait(60)  # the held batch runs 300 s: the process does not wait for it
        stopped_after = time.monotonic() - signalled
    finally:
        server.stop()
    for answer, request_id in zip(answers, ["held", "queued"]):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert error_of(answer)["type"] == "shutting_down" and answer.json()["id"] == request_id
        assert error_of(answer)["message"].startswith("the server is stopping: ")
    assert status == 1 and stopped_after < 30  # seconds after the signal: drain 2 s, or at once
    log = server.output()
    reason = "stopped at once by a second SIGINT" if second_sigint else "not tagged within --drain-timeout 2 s"
    assert f"2 request(s) in flight got 503 instead of their answer ({reason})" in log
    assert "Traceback" not in log and "CancelledError" not in log


def test_port_in_use_is_one_line_before_the_pipeline_loads(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            wnut_command("serve", tmp_path / "no-such-model", "--port", port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("✘") and f"--port {port}" in last and "in use" in last
    assert "no-such-model" not in result.stderr  # refused before the pipeline was looked for


def test_unknown_engine_is_refused_before_serving(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--engine", "bogus"]) == 1
    assert "--engine 'bogus': must be one of torch" in capsys.readouterr().err


def test_min_score_per_request_leaves_out_entities_below_it(server):
    texts = TEXTS * 2
    everything = post(server.url, json={"texts": texts}).json()["results"]
    scores = sorted(e["score"] for row in everything for e in row["entities"])
    threshold = scores[len(scores) // 2]
    kept = post(server.url, json={"texts": texts, "min_score": threshold}).json()["results"]
    expected = [[e for e in row["entities"] if e["score"] >= threshold] for row in everything]
    assert [row["entities"] for row in kept] == expected and 0 < sum(map(len, expected)) < len(scores) + 1
    refused = post(server.url, json={"text": "Tom Hanks", "min_score": 1.5})
    assert refused.status_code == 422 and error_of(refused)["field"] == "min_score"
