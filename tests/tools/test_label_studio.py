"""Label Studio's own code against what export-tasks writes and import-tasks reads.

Label Studio pins many packages of its own, so it runs from its own venv,
built once by `tests/fixtures/label_studio/label_studio_venv.sh` (cached under
$SPACY_WNUT_TOOL_VENVS, default ~/.cache/spacy-wnut/tool-venvs); a test
skips, saying why, where that venv cannot be built. The server test starts a
real Label Studio on 127.0.0.1 (about a minute on 2 cores) and runs only with
SPACY_WNUT_LABEL_STUDIO_SERVER=1, as `.ci/run` sets it.
"""

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_wnut.tools.annotation.export import export_tasks
from spacy_wnut.tools.annotation.importer import import_tasks

from ..util import TRAIN_DATA

TOOLS = Path(__file__).parents[1] / "fixtures" / "label_studio"
TEXTS = [text for text, _ in TRAIN_DATA]


def tool_python(kind: str) -> str:
    """The Python of the Label Studio venv of this kind, built if needed; skips the test where it cannot be."""
    if shutil.which("bash") is None:
        pytest.skip("building the Label Studio venv needs bash")
    result = subprocess.run(
        ["bash", str(TOOLS / "label_studio_venv.sh"), kind], capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        pytest.skip(f"no Label Studio {kind} venv: {result.stderr.strip()[-300:]}")
    return result.stdout.strip().splitlines()[-1]


def corrected(tasks):
    """Label Studio's JSON export of `tasks` after an annotator accepted each prediction, with two edits."""
    export = []
    for number, task in enumerate(tasks, start=1):
        result = copy.deepcopy(task["predictions"][0]["result"])
        if task["data"]["text"].startswith("Tom Hanks"):
            result[1]["value"]["labels"] = ["product"]  # Game of Thrones relabelled
        if task["data"]["text"].startswith("apple"):
            result = []  # apple inc removed
        stamp = f"2026-01-0{number}T10:00:00.000000Z"
        annotation = {"id": number, "completed_by": 1, "result": result, "was_cancelled": False}
        export.append({"id": number, **task, "annotations": [{**annotation, "created_at": stamp, "updated_at": stamp}]})
    return export


EXPECTED = [
    [["location", "New York"]],
    [["person", "Tom Hanks"], ["product", "Game of Thrones"]],
    [],
    [],
]


def our_entities(export_path, tmp_path, **options):
    import_tasks(export_path, tmp_path / "corrected.spacy", format="label-studio", overwrite=True, **options)
    docs = DocBin().from_disk(tmp_path / "corrected.spacy").get_docs(spacy.blank("en").vocab)
    return [[[e.label_, e.text] for e in doc.ents] for doc in docs]


@pytest.fixture(scope="module")
def converted(trained_nlp, tmp_path_factory):
    """Our tasks, an annotated export of them, and what Label Studio's SDK made of both."""
    python = tool_python("sdk")
    tmp = tmp_path_factory.mktemp("label-studio-sdk")
    (tmp / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    export_tasks(trained_nlp, tmp / "in.txt", tmp / "tasks.json", format="label-studio", progress=False)
    tasks = json.loads((tmp / "tasks.json").read_text(encoding="utf-8"))
    (tmp / "export.json").write_text(json.dumps(corrected(tasks)), encoding="utf-8")
    command = [python, str(TOOLS / "label_studio_check.py"), tmp / "tasks.label_config.xml", tmp / "tasks.json"]
    command += [tmp / "export.json", tmp / "conll"]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.venv
def test_label_studio_accepts_our_labeling_config_and_predictions(converted):
    _, checked = converted
    assert checked["config_errors"] == []
    assert checked["prediction_errors"] == [[] for _ in TEXTS]


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.venv
def test_label_studio_converter_finds_the_entities_our_import_finds(converted, tmp_path):
    tmp, checked = converted
    assert checked["entities"] == EXPECTED
    assert our_entities(tmp / "export.json", tmp_path) == EXPECTED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudio:
    """A Label Studio server on 127.0.0.1 with a temporary data directory, driven through its REST API."""

    TOKEN = "spacy-wnut-test-token-0123456789"

    def __init__(self, python: str, data_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "LABEL_STUDIO_USERNAME": "annotator@localhost",
            "LABEL_STUDIO_PASSWORD": "spacy-wnut-test",
            "LABEL_STUDIO_USER_TOKEN": self.TOKEN,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
        }
        command = [python, "-m", "label_studio.server", "start", "--no-browser", "--internal-host", "127.0.0.1"]
        command += ["--port", self.url.rsplit(":", 1)[1], "--data-dir", str(data_dir)]
        self.log = (data_dir / "server.log").open("w")
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait(self, seconds: float = 240) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.process.returncode}; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url + "/health", timeout=5).close()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(1)
        raise TimeoutError(f"Label Studio did not answer {self.url}/health within {seconds:.0f} s")

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": f"Token {self.TOKEN}", "Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the server and its children
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    if os.environ.get("SPACY_WNUT_LABEL_STUDIO_SERVER") != "1":
        pytest.skip("starts a real Label Studio server (about a minute): set SPACY_WNUT_LABEL_STUDIO_SERVER=1")
    server = LabelStudio(tool_python("server"), tmp_path_factory.mktemp("label-studio-data"))
    try:
        server.wait()
        yield server
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.venv
def test_label_studio_server_round_trip_through_its_rest_api(label_studio, trained_nlp, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    export_tasks(trained_nlp, tmp_path / "in.txt", tmp_path / "tasks.json", format="label-studio", progress=False)
    config = (tmp_path / "tasks.label_config.xml").read_text(encoding="utf-8")
    project = label_studio.call("POST", "/api/projects", {"title": "spacy-wnut", "label_config": config})
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    imported = label_studio.call("POST", f"/api/projects/{project['id']}/import", tasks)
    assert imported["task_count"] == imported["prediction_count"] == len(TEXTS)
    stored = label_studio.call("GET", f"/api/tasks?project={project['id']}&fields=all")["tasks"]
    for task in stored:  # as an annotator would: start from the prediction, correct it, submit
        [prediction] = task["predictions"]
        result = corrected([{"data": task["data"], "predictions": [prediction]}])[0]["annotations"][0]["result"]
        label_studio.call("POST", f"/api/tasks/{task['id']}/annotations", {"result": result, "lead_time": 1.0})
    export = label_studio.call("GET", f"/api/projects/{project['id']}/export?exportType=JSON")
    (tmp_path / "export.json").write_text(json.dumps(export), encoding="utf-8")
    by_line = dict(zip([t["data"]["line"] for t in export], our_entities(tmp_path / "export.json", tmp_path)))
    assert [by_line[line] for line in (1, 2, 3, 4)] == EXPECTED
