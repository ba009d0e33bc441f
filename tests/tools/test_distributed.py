"""annotate on Ray Data (a local cluster on loopback): identical records and entities to one process,
bad records and pipeline failures as error records, sums checked, a dying worker survived."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from spacy_wnut.data.conll import read_conll
from spacy_wnut.errors import ConfigError, InputError, MissingExtra, OutputError
from spacy_wnut.tools.annotate import annotate

from ..util import TRAIN_DATA, wnut_command

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'spacy-wnut[ray]'")
pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'spacy-wnut[ray]'")

from spacy_wnut.tools.distributed import ERRORS_DIR, annotate_ray, iter_records, run, start_ray  # noqa: E402
from spacy_wnut.tools.distributed.compat import blocks_of  # noqa: E402

pytestmark = pytest.mark.slow  # a local Ray cluster

ASSETS = Path(__file__).parents[2] / "assets"


@pytest.fixture(scope="module")
def ray_cluster():
    start_ray(None, num_cpus=3)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def texts():
    """WNUT 17 dev sentences and synthetic ones built from the training texts: about 3,000."""
    wnut = [" ".join(sentence.words) for sentence in read_conll(ASSETS / "emerging.dev.conll")]
    base = [text for text, _ in TRAIN_DATA]
    synthetic = [f"{base[i % len(base)]} and {base[(i * 7) % len(base)].lower()} #{i}" for i in range(2000)]
    return wnut + synthetic


@pytest.fixture(scope="module")
def shards(texts, tmp_path_factory):
    """The texts in three JSONL shards, with metadata, two bad lines and a blank line."""
    folder = tmp_path_factory.mktemp("shards")
    for n in range(3):
        lines = [json.dumps({"text": text, "id": i, "meta": {"shard": n}}) for i, text in enumerate(texts[n::3])]
        lines[5] = '{"text": broken json'
        lines[9] = json.dumps({"no_text": 1})
        lines.insert(12, "   ")
        (folder / f"shard-{n}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def keyed(records):
    return {
        (r["source"], r["line"]): [(e["start"], e["end"], e["label"], e["text"]) for e in r["entities"]]
        for r in records
    }


def single_process(model_dir, shards, tmp_path):
    records = []
    for shard in sorted(shards.glob("*.jsonl")):
        out = tmp_path / f"single-{shard.stem}.jsonl"
        annotate(model_dir, shard, out, progress=False, skip_bad_lines=True)
        records += [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return records


@pytest.fixture(scope="module")
def reference(model_dir, shards, tmp_path_factory):
    return single_process(model_dir, shards, tmp_path_factory.mktemp("single"))


def test_ray_output_equals_single_process_output(ray_cluster, model_dir, shards, reference, tmp_path):
    summary = annotate_ray(model_dir, shards, tmp_path / "out", actors=2, batch_size=64)
    records = list(iter_records(tmp_path / "out"))
    assert keyed(records) == keyed(reference) and len(records) == len(reference)
    by_key = {(r["source"], r["line"]): r for r in reference}
    for record in records:
        expected = by_key[(record["source"], record["line"])]
        assert {k: v for k, v in record.items() if k != "entities"} == {
            k: v for k, v in expected.items() if k != "entities"
        }
        for got, want in zip(record["entities"], expected["entities"]):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)
    assert summary.records_in == summary.records_out + summary.error_records == len(reference) + 6
    assert summary.blank_lines == 3 and summary.errors == {"invalid JSON": 3, "missing text": 3}
    errors = [json.loads(line) for shard in (tmp_path / "out" / ERRORS_DIR).glob("*.jsonl") for line in shard.open()]
    assert sorted((e["source"], e["line"], e["reason"]) for e in errors) == sorted(
        [(f"shard-{n}.jsonl", 6, "invalid JSON") for n in range(3)]
        + [(f"shard-{n}.jsonl", 10, "missing text") for n in range(3)]
    )
    assert json.loads((tmp_path / "out" / "_summary.json").read_text())["balanced"] is True
    assert not (tmp_path / "out.partial").exists()


def test_ray_min_score_leaves_out_the_entities_one_process_leaves_out(
    ray_cluster, model_dir, shards, reference, tmp_path
):
    scores = sorted(e["score"] for r in reference for e in r["entities"])
    # halfway across the widest gap between scores: batching moves a score by far less than that
    gap, threshold = max((high - low, (low + high) / 2) for low, high in zip(scores, scores[1:]))
    assert gap > 1e-3
    annotate_ray(model_dir, shards, tmp_path / "out", actors=1, batch_size=64, min_score=threshold)
    expected = [{**r, "entities": [e for e in r["entities"] if e["score"] >= threshold]} for r in reference]
    assert keyed(iter_records(tmp_path / "out")) == keyed(expected)
    with pytest.raises(ConfigError, match="--min-score"):
        annotate_ray(model_dir, shards, tmp_path / "bad", min_score=1.5)


def test_ray_runs_the_runtime_pipeline_with_the_same_entities(ray_cluster, model_dir, shards, reference, tmp_path):
    from spacy_wnut.tools.runtime_export import export_runtime

    export_runtime(model_dir, tmp_path / "runtime")
    annotate_ray(tmp_path / "runtime", shards, tmp_path / "out", actors=2, batch_size=64)
    assert keyed(iter_records(tmp_path / "out")) == keyed(reference)


def test_a_worker_that_dies_is_replaced_and_its_batch_retried(
    ray_cluster, model_dir, shards, reference, tmp_path, monkeypatch
):
    marker = tmp_path / "fault-happened"
    monkeypatch.setattr(run, "_TEST_FAULT_MARKER", str(marker))
    summary = annotate_ray(model_dir, shards, tmp_path / "out", actors=2, batch_size=128)
    assert marker.exists()  # one actor process exited on its first batch
    assert keyed(iter_records(tmp_path / "out")) == keyed(reference)
    assert summary.balanced and summary.records_out == len(reference)


def test_parquet_in_and_out_carry_metadata_columns(ray_cluster, model_dir, texts, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": text, "id": i, "lang": "en"} for i, text in enumerate(texts[:300])]
    rows[3]["text"] = None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    summary = annotate_ray(model_dir, tmp_path / "in.parquet", tmp_path / "out", output_format="parquet", actors=1)
    records = sorted(iter_records(tmp_path / "out"), key=lambda r: r["line"])
    assert summary.records_in == 300 and summary.records_out == 299 and summary.errors == {"missing text": 1}
    assert [r["id"] for r in records] == [i for i in range(300) if i != 3]
    assert {r["lang"] for r in records} == {"en"} and records[0]["source"] == "in.parquet" and records[0]["line"] == 1


def test_a_text_over_max_length_is_an_error_record_as_in_one_process(ray_cluster, model_dir, tmp_path):
    too_long = "a " * 500_001  # over spaCy's nlp.max_length: the pipeline raises E088
    lines = [{"text": "Tom Hanks is watching Game of Thrones"}, {"text": too_long}, {"text": "apple inc rocks"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = annotate_ray(model_dir, tmp_path / "in.jsonl", tmp_path / "out")
    assert summary.records_out == 2 and summary.error_records == 1 and summary.errors == {"text too long": 1}
    (error,) = [json.loads(line) for shard in (tmp_path / "out" / ERRORS_DIR).glob("*.jsonl") for line in shard.open()]
    assert error["line"] == 2 and "over nlp.max_length" in error["detail"]


def test_one_input_file_is_cut_into_blocks_so_that_every_actor_gets_work(ray_cluster):
    # Ray Data reads a file as one block and hands a block to one actor.
    dataset = ray.data.from_items([{"i": i} for i in range(1000)], override_num_blocks=1)
    blocks = blocks_of(dataset, 64, 1000).materialize()
    assert blocks.num_blocks() >= 1000 // 64 and sorted(row["i"] for row in blocks.take_all()) == list(range(1000))


def test_a_pool_that_leaves_no_cpu_for_reading_is_refused_not_left_waiting(ray_cluster, model_dir, shards, tmp_path):
    # The fixture's local cluster has 3 CPUs: 3 actors of 1 CPU leave none for the tasks that read the input.
    with pytest.raises(ValueError, match=r"has 3 CPU\(s\).*need 3\.25: use fewer --actors"):
        annotate_ray(model_dir, shards, tmp_path / "out", actors=3)
    assert not (tmp_path / "out.partial").exists() and not (tmp_path / "out").exists()


def test_the_cli_runs_on_ray_and_refuses_an_existing_output(model_dir, shards, tmp_path):
    command = wnut_command(
        "annotate",
        str(model_dir),
        str(shards / "shard-0.jsonl"),
        str(tmp_path / "out"),
        "--ray",
        "--actors",
        "1",
        "--batch-size",
        "256",
        "--no-progress",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "adds up" in result.stdout and "error records, invalid JSON: 1" in result.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1 and "already exists; pass --overwrite" in again.stderr


def test_without_ray_the_message_names_the_extra(monkeypatch):
    import importlib.util

    from spacy_wnut.tools.distributed.compat import require_ray

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("ray") else real(name, *a)
    )
    with pytest.raises(MissingExtra, match=r"pip install 'spacy-wnut\[ray\]'"):
        require_ray()


def test_every_file_of_an_input_directory_is_read_or_refused(ray_cluster, model_dir, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text(json.dumps({"text": TRAIN_DATA[1][0]}) + "\n")
    (tmp_path / "in" / "b.txt").write_text(TRAIN_DATA[2][0] + "\n\n" + TRAIN_DATA[0][0] + "\n")
    (tmp_path / "in" / "_SUCCESS").write_text("")
    summary = annotate_ray(model_dir, tmp_path / "in", tmp_path / "out")
    records = sorted(iter_records(tmp_path / "out"), key=lambda r: (r["source"], r["line"]))
    assert [(r["source"], r["line"]) for r in records] == [("a.jsonl", 1), ("b.txt", 1), ("b.txt", 3)]
    assert summary.input_files == 2 and summary.ignored_files == ["_SUCCESS"] and summary.blank_lines == 1
    (tmp_path / "in" / "c.spacy").write_bytes(b"")
    with pytest.raises(InputError, match=r"c\.spacy: --ray cannot read this file"):
        annotate_ray(model_dir, tmp_path / "in", tmp_path / "again")
    assert not (tmp_path / "again").exists() and not (tmp_path / "again.partial").exists()


def test_a_stale_partial_output_is_kept_unless_overwrite(model_dir, shards, tmp_path):
    (tmp_path / "out.partial").mkdir()
    (tmp_path / "out.partial" / "part-earlier.jsonl").write_text("{}\n")
    with pytest.raises(OutputError, match=r"out\.partial: left by an interrupted run.*--overwrite to start again"):
        annotate_ray(model_dir, shards, tmp_path / "out")
    assert (tmp_path / "out.partial" / "part-earlier.jsonl").read_text() == "{}\n"


def test_a_missing_model_is_refused_before_ray_starts(shards, tmp_path):
    with pytest.raises(InputError, match=r"no-such-model: no pipeline directory or installed pipeline package"):
        annotate_ray(tmp_path / "no-such-model", shards, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_parquet_file_is_named(model_dir, tmp_path):
    (tmp_path / "in.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"in\.parquet: not a readable Parquet file"):
        annotate_ray(model_dir, tmp_path / "in.parquet", tmp_path / "out")
    assert not (tmp_path / "out.partial").exists()


def test_listeners_of_reads_the_listening_sockets_of_a_process_tree():
    import sys

    from spacy_wnut.tools.listening import listeners_of

    code = (
        "import socket, sys, time\n"
        "socks = [socket.socket(), socket.socket()]\n"
        "socks[0].bind(('127.0.0.1', 0)); socks[1].bind(('0.0.0.0', 0))\n"
        "[s.listen() for s in socks]\n"
        "print(socks[0].getsockname()[1], socks[1].getsockname()[1], flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        loopback, wildcard = map(int, child.stdout.readline().split())
        found = {listener.port: listener for listener in listeners_of(child.pid)}
    finally:
        child.kill()
        child.wait()
    assert found[loopback].address == "127.0.0.1" and found[loopback].loopback_only
    assert found[wildcard].address == "0.0.0.0" and not found[wildcard].loopback_only
    assert found[wildcard].pid == child.pid


def test_a_local_ray_cluster_warns_exactly_when_it_listens_beyond_loopback():
    import sys

    code = (
        "import json, os, warnings\n"
        "from spacy_wnut.tools.distributed import start_ray\n"
        "from spacy_wnut.tools.listening import listeners_of\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    start_ray(None, num_cpus=1)\n"
        "exposed = [str(l) for l in listeners_of(os.getpid()) if not l.loopback_only]\n"
        "print(json.dumps({'warnings': [str(w.message) for w in caught if 'beyond loopback' in str(w.message)],"
        " 'exposed': exposed}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    if seen["exposed"]:  # Ray 2.60: gcs_server, raylet and workers on every interface
        (message,) = seen["warnings"]  # (workers may start later: the count is of those up at the start)
        assert re.search(r"listens on [1-9]\d* sockets beyond loopback, e\.g\. \S+:\d+ \(", message), message
    else:
        assert seen["warnings"] == []
