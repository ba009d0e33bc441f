"""The annotate CLI: text/JSONL/DocBin in, JSONL/DocBin/HTML out, bad lines reported by number."""
import json
import subprocess
import sys

import pytest
from spacy.tokens import DocBin

from conftest import TRAIN_DATA, ents_of
from spacy_wnut.annotate import annotate
from spacy_wnut.conll import InputError

TEXTS = [text for text, _ in TRAIN_DATA]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]


@pytest.fixture(scope="module")
def model_dir(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    trained_nlp.to_disk(path)
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def entity_triples(records):
    return [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in records]


def test_jsonl_in_keeps_metadata_and_gives_entities_with_scores(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t, "id": i, "meta": {"src": "x"}}) + "\n" for i, t in enumerate(TEXTS)))
    summary = annotate(model_dir, source, tmp_path / "out.jsonl", progress=False)
    records = read_jsonl(tmp_path / "out.jsonl")
    assert summary.docs_in == summary.docs_out == len(TEXTS)
    assert [r["id"] for r in records] == list(range(len(TEXTS))) and records[0]["meta"] == {"src": "x"}
    assert entity_triples(records) == GOLD
    assert all(0.0 < e["score"] <= 1.0 for r in records for e in r["entities"])
    assert records[1]["entities"][0]["text"] == "Tom Hanks"


def test_text_in_docbin_shards_out_and_docbin_in(model_dir, trained_nlp, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    summary = annotate(model_dir, tmp_path / "in.txt", tmp_path / "out.spacy", progress=False)
    assert summary.docs_in == summary.docs_out == len(TEXTS)  # the blank line is no doc
    docs = list(DocBin().from_disk(tmp_path / "out.spacy" / "00000.spacy").get_docs(trained_nlp.vocab))
    assert ents_of(docs) == GOLD
    again = annotate(model_dir, tmp_path / "out.spacy", tmp_path / "again.jsonl", progress=False)
    assert again.docs_in == len(TEXTS) and entity_triples(read_jsonl(tmp_path / "again.jsonl")) == GOLD


def test_html_out_holds_the_entities(model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS), encoding="utf-8")
    annotate(model_dir, tmp_path / "in.txt", tmp_path / "out.html", progress=False)
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<mark") == sum(len(g) for g in GOLD)
    assert "Tom Hanks" in page and "creative-work" in page


BAD_LINES = [
    (b'{"text": "Tom Hanks is watching"}\n{"text": 5}\n', 2, "missing text"),
    (b'{"text": "ok"}\n{"text": "broken\n', 2, "invalid JSON"),
    (b'{"text": "ok"}\n\n{"text": "caf\xe9"}\n', 3, "undecodable bytes"),
    (b'["a list"]\n', 1, "missing text"),
]


@pytest.mark.parametrize("content,line,reason", BAD_LINES)
def test_bad_lines_are_fatal_with_their_line(model_dir, tmp_path, content, line, reason):
    (tmp_path / "in.jsonl").write_bytes(content)
    with pytest.raises(InputError, match=rf"in\.jsonl:{line}: {reason}"):
        annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)


@pytest.mark.parametrize("content,line,reason", BAD_LINES)
def test_bad_lines_can_be_skipped_and_counted(model_dir, tmp_path, content, line, reason):
    (tmp_path / "in.jsonl").write_bytes(content)
    summary = annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", skip_bad_lines=True, progress=False)
    assert summary.skipped == {reason: 1} and summary.skipped_lines == {reason: [line]}
    assert summary.docs_out == summary.docs_in == len(read_jsonl(tmp_path / "out.jsonl"))


def test_cli_n_process_2_equals_1_and_prints_the_summary(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(json.dumps({"text": t, "n": i}).encode() + b"\n" for i, t in enumerate(TEXTS * 5)) + b"{bad\n")
    outputs = []
    for n_process in (1, 2):
        out = tmp_path / f"out{n_process}.jsonl"
        result = subprocess.run(
            [sys.executable, "-m", "spacy_wnut", "annotate", str(model_dir), str(source), str(out),
             "--n-process", str(n_process), "--batch-size", "4", "--skip-bad-lines"],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "docs in: 20, docs out: 20" in result.stdout and "invalid JSON: line 21" in result.stdout
        assert "doc/s" in result.stderr  # the progress bar shows the rate
        outputs.append(read_jsonl(out))
    assert outputs[0] == outputs[1] and [r["n"] for r in outputs[0]] == list(range(20))


def test_cli_errors_name_the_problem(model_dir, tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n")
    result = subprocess.run(
        [sys.executable, "-m", "spacy_wnut", "annotate", str(model_dir), str(tmp_path / "in.csv"), str(tmp_path / "o.jsonl")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1 and "in.csv" in result.stderr and "format" in result.stderr
