"""The annotate CLI: text/JSONL/DocBin in, JSONL/DocBin/HTML out, bad lines reported by number."""

import json
import os
import signal
import subprocess
import time

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_wnut.errors import InputError, OutputError
from spacy_wnut.tools.annotate import annotate

from ..util import TRAIN_DATA, ents_of, wnut_command

TEXTS = [text for text, _ in TRAIN_DATA]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def entity_triples(records):
    return [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in records]


def test_jsonl_in_keeps_metadata_and_gives_entities_with_scores(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"text": t, "id": i, "meta": {"src": "x"}}) + "\n" for i, t in enumerate(TEXTS))
    )
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
    assert summary.docs_in == summary.docs_out == len(TEXTS)
    assert summary.blank_lines == [len(TEXTS) + 1]  # the blank line is no doc, and it is counted
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
    assert len(summary.blank_lines) == content.count(b"\n\n")
    assert summary.docs_out == summary.docs_in == len(read_jsonl(tmp_path / "out.jsonl"))


def test_cli_n_process_2_equals_1_and_prints_the_summary(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b"".join(json.dumps({"text": t, "n": i}).encode() + b"\n" for i, t in enumerate(TEXTS * 5)) + b"{bad\n"
    )
    outputs = []
    for n_process in (1, 2):
        out = tmp_path / f"out{n_process}.jsonl"
        result = subprocess.run(
            wnut_command(
                "annotate",
                str(model_dir),
                str(source),
                str(out),
                "--n-process",
                str(n_process),
                "--batch-size",
                "4",
                "--skip-bad-lines",
            ),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "docs in: 20, docs out: 20" in result.stdout and "invalid JSON: line 21" in result.stdout
        assert "doc/s" in result.stderr  # the progress bar shows the rate
        outputs.append(read_jsonl(out))
    assert outputs[0] == outputs[1] and [r["n"] for r in outputs[0]] == list(range(20))


def test_cli_errors_name_the_problem(model_dir, tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n")
    result = subprocess.run(
        wnut_command("annotate", str(model_dir), str(tmp_path / "in.csv"), str(tmp_path / "o.jsonl")),
        capture_output=True,
        text=True,
    )
    assert (
        result.returncode == 1
        and "in.csv" in result.stderr
        and "'csv' is not a supported input format" in result.stderr
    )


def write_jsonl(path, texts, start=0):
    path.write_text(
        "".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts, start)), encoding="utf-8"
    )
    return path


def test_output_records_carry_their_input_line(model_dir, tmp_path):
    (tmp_path / "in.txt").write_text(f"{TEXTS[0]}\n\n   \n{TEXTS[1]}\n", encoding="utf-8")
    summary = annotate(model_dir, tmp_path / "in.txt", tmp_path / "out.jsonl", progress=False)
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["source"], r["line"], r["text"]) for r in records] == [("in.txt", 1, TEXTS[0]), ("in.txt", 4, TEXTS[1])]
    assert summary.blank_lines == [2, 3]


def test_the_input_is_never_the_output(model_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    before = source.read_bytes()
    with pytest.raises(ValueError, match="the output is the input"):
        annotate(model_dir, source, source, progress=False, overwrite=True)
    assert source.read_bytes() == before


def test_an_existing_output_is_kept_unless_overwrite(model_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    (tmp_path / "out.jsonl").write_text("earlier\n")
    with pytest.raises(ValueError, match="already exists; pass --overwrite"):
        annotate(model_dir, source, tmp_path / "out.jsonl", progress=False)
    assert (tmp_path / "out.jsonl").read_text() == "earlier\n"
    annotate(model_dir, source, tmp_path / "out.jsonl", progress=False, overwrite=True)
    assert len(read_jsonl(tmp_path / "out.jsonl")) == len(TEXTS)


def test_a_failed_run_leaves_the_earlier_output_whole(model_dir, tmp_path):
    (tmp_path / "out.jsonl").write_text("earlier\n")
    (tmp_path / "in.txt").write_bytes(b"fine line\n\xff\xfe binary \x00\n")
    with pytest.raises(InputError, match=r"in\.txt:2: undecodable bytes"):
        annotate(model_dir, tmp_path / "in.txt", tmp_path / "out.jsonl", progress=False, overwrite=True)
    assert (tmp_path / "out.jsonl").read_text() == "earlier\n"


def test_rerunning_into_a_docbin_directory_leaves_no_stale_shards(model_dir, trained_nlp, tmp_path, monkeypatch):
    monkeypatch.setattr("spacy_wnut.tools.annotate.SHARD_SIZE", 2)
    write_jsonl(tmp_path / "long.jsonl", TEXTS * 2)
    annotate(model_dir, tmp_path / "long.jsonl", tmp_path / "out.spacy", progress=False)
    assert len(list((tmp_path / "out.spacy").iterdir())) == 4
    write_jsonl(tmp_path / "short.jsonl", TEXTS[:1])
    annotate(model_dir, tmp_path / "short.jsonl", tmp_path / "out.spacy", progress=False, overwrite=True)
    from spacy.training import Corpus

    assert [eg.reference.text for eg in Corpus(tmp_path / "out.spacy")(trained_nlp)] == TEXTS[:1]


def test_docbin_input_is_tagged_from_its_tokens_not_its_entities(model_dir, trained_nlp, tmp_path):
    wrong = [trained_nlp.make_doc(text) for text in TEXTS]
    wrong[0].ents = [wrong[0].char_span(0, 1, label="group")]  # "I" as a group: not what the model says
    DocBin(docs=wrong).to_disk(tmp_path / "in.spacy")
    annotate(model_dir, tmp_path / "in.spacy", tmp_path / "fresh.jsonl", progress=False)
    assert entity_triples(read_jsonl(tmp_path / "fresh.jsonl")) == GOLD
    annotate(model_dir, tmp_path / "in.spacy", tmp_path / "kept.jsonl", progress=False, keep_entities=True)
    kept = read_jsonl(tmp_path / "kept.jsonl")[0]["entities"]
    assert (0, 1, "group") in entity_triples([{"entities": kept}])[0]
    assert [e["score"] for e in kept if e["label"] == "group"] == [None]


def test_docbin_directory_with_annotates_own_layout_reads_back(model_dir, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", TEXTS)
    (tmp_path / "corpus").mkdir()
    annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "corpus" / "part1.spacy", progress=False)
    summary = annotate(model_dir, tmp_path / "corpus", tmp_path / "again.jsonl", progress=False)
    assert summary.docs_in == len(TEXTS)
    assert {r["source"] for r in read_jsonl(tmp_path / "again.jsonl")} == {"part1.spacy/00000.spacy"}


def test_a_bad_docbin_file_in_a_directory_is_named(model_dir, tmp_path):
    (tmp_path / "corpus").mkdir()
    DocBin(docs=[spacy.blank("en")("fine")]).to_disk(tmp_path / "corpus" / "a.spacy")
    (tmp_path / "corpus" / "b.spacy").write_bytes(b"not a docbin")
    with pytest.raises(InputError, match=r"corpus/b\.spacy: not a readable spaCy DocBin"):
        annotate(model_dir, tmp_path / "corpus", tmp_path / "out.jsonl", progress=False)


@pytest.mark.parametrize(
    "bad,reason,detail",
    [
        ('{"text": "bad \\ud800 text"}', "invalid text", "lone surrogate"),
        # over spaCy's default nlp.max_length, which makes nlp.pipe raise (E088)
        (json.dumps({"text": "a " * 500_001}), "text too long", r"1,000,002 characters, over nlp\.max_length"),
    ],
)
def test_a_record_that_cannot_be_tagged_is_located_and_skippable(model_dir, tmp_path, bad, reason, detail):
    (tmp_path / "in.jsonl").write_text(f'{{"text": "Tom Hanks"}}\n{bad}\n{{"text": "apple inc"}}\n')
    with pytest.raises(InputError, match=rf"in\.jsonl:2: {reason}: {detail}"):
        annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)
    summary = annotate(
        model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False, skip_bad_lines=True, overwrite=True
    )
    assert summary.skipped == {reason: 1} and [r["line"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 3]


def test_a_fatal_bad_line_keeps_what_was_tagged_and_resume_continues(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [json.dumps({"text": t}) for t in TEXTS * 30]
    lines[99] = "{broken"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=r"in\.jsonl:100: invalid JSON.* 99 docs before it are in .*out\.jsonl\.partial"
    ):
        annotate(model_dir, source, tmp_path / "out.jsonl", progress=False, batch_size=4)
    assert [r["line"] for r in read_jsonl(tmp_path / "out.jsonl.partial")] == list(range(1, 100))
    lines[99] = json.dumps({"text": "fixed"})
    source.write_text("\n".join(lines) + "\n")
    summary = annotate(model_dir, source, tmp_path / "out.jsonl", progress=False, resume=True)
    assert summary.resumed_after == ("in.jsonl", 99) and summary.docs_out == len(lines) - 99
    assert [r["line"] for r in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, len(lines) + 1))
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_a_partial_output_is_not_silently_replaced(model_dir, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", TEXTS)
    (tmp_path / "out.jsonl.partial").write_text("")
    with pytest.raises(ValueError, match="left by an interrupted run; pass --resume"):
        annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)
    with pytest.raises(ValueError, match="no interrupted run to resume"):
        annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "other.jsonl", progress=False, resume=True)


def test_reserved_metadata_names_are_renamed_and_counted(model_dir, tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": TEXTS[0], "entities": ["gold"], "line": 7}) + "\n")
    summary = annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)
    (record,) = read_jsonl(tmp_path / "out.jsonl")
    assert record["input_entities"] == ["gold"] and record["input_line"] == 7 and record["line"] == 1
    assert summary.renamed_fields == {"entities": 1, "line": 1}


@pytest.mark.parametrize("option", [{"batch_size": 0}, {"n_process": 0}])
def test_counts_below_one_are_refused(model_dir, tmp_path, option):
    write_jsonl(tmp_path / "in.jsonl", TEXTS)
    with pytest.raises(ValueError, match=f"{next(iter(option))} must be a whole number of at least 1"):
        annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False, **option)
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_main_process_alone_stops_a_two_process_run_with_full_pipes(model_dir, tmp_path, signum):
    # Texts of ~9,000 characters in batches of 8: each batch sent to a worker is larger than a pipe
    # holds (64 KiB), so the main process's queue feeder thread is blocked writing the next batch
    # when the signal comes. The run must still end, and resume must complete it. (Words over 100
    # characters are one [UNK] subword each, so these long texts are quick to tag.)
    texts = [f"{TEXTS[i % len(TEXTS)]} number {i} " + " ".join(["x" * 150] * 60) for i in range(800)]
    source = write_jsonl(tmp_path / "in.jsonl", texts, start=1)
    out, partial = tmp_path / "out.jsonl", tmp_path / "out.jsonl.partial"
    command = wnut_command(
        "annotate", str(model_dir), str(source), str(out), "--n-process", "2", "--batch-size", "8", "--no-progress"
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (partial.exists() and partial.read_bytes().count(b"\n") >= 8):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    workers = [
        int(pid)
        for pid in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    ]
    assert len(workers) >= 2
    stopped_at = time.monotonic()
    process.send_signal(signum)  # to the main process alone
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the run did not exit after the signal (it hangs at exit)")
    assert time.monotonic() - stopped_at < 20
    assert process.returncode == 128 + signum, stderr
    assert f"interrupted by {signal.Signals(signum).name} after" in stderr and "--resume" in stderr
    time.sleep(0.5)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}") and _is_running(pid)]
    done = [r["line"] for r in read_jsonl(partial)]
    assert done == list(range(1, len(done) + 1)) and 0 < len(done) < len(texts)
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after in.jsonl:{len(done)}" in resumed.stdout
    final = read_jsonl(out)
    assert [r["line"] for r in final] == list(range(1, len(texts) + 1))
    assert [r["n"] for r in final] == list(range(1, len(texts) + 1))


def _is_running(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_a_byte_order_mark_is_not_part_of_the_first_text(model_dir, tmp_path):
    (tmp_path / "in.txt").write_bytes("\ufeff".encode("utf-8") + f"{TEXTS[1]}\n".encode("utf-8"))
    annotate(model_dir, tmp_path / "in.txt", tmp_path / "out.jsonl", progress=False)
    (record,) = read_jsonl(tmp_path / "out.jsonl")
    assert record["text"] == TEXTS[1] and entity_triples([record]) == [GOLD[1]]


@pytest.mark.parametrize("output", [["-"], ["/dev/stdout", "--overwrite"]])
def test_stdout_output_gets_the_records_and_stderr_the_summary(model_dir, tmp_path, output):
    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    result = subprocess.run(
        wnut_command("annotate", model_dir, source, *output, "--no-progress"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert entity_triples(records) == GOLD and "docs in: 4, docs out: 4" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_fifo_output_is_streamed_to_and_stays_a_fifo(model_dir, tmp_path):
    import stat
    import threading

    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    summary = annotate(model_dir, source, fifo, progress=False)  # no --overwrite needed: a stream holds no result
    reader.join(30)
    assert entity_triples(json.loads(line) for line in received[0].splitlines()) == GOLD
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and summary.outputs == [str(fifo)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_a_link_output_is_followed_and_stays_a_link(model_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "real.jsonl").write_text("earlier\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(tmp_path / "results" / "real.jsonl")
    with pytest.raises(OutputError, match=r"out\.jsonl \(a link to .*real\.jsonl\): already exists"):
        annotate(model_dir, source, link, progress=False)
    annotate(model_dir, source, link, progress=False, overwrite=True)
    assert link.is_symlink() and entity_triples(read_jsonl(tmp_path / "results" / "real.jsonl")) == GOLD


def stopped_run(model_dir, folder, texts=TEXTS * 3, bad_line=None):
    """A run that stopped at a bad line, leaving `out.jsonl.partial` with the records before it."""
    folder.mkdir(exist_ok=True)
    lines = [json.dumps({"text": t}) for t in texts]
    bad = len(lines) if bad_line is None else bad_line
    lines.insert(bad, "{broken")
    source = folder / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="invalid JSON"):
        annotate(model_dir, source, folder / "out.jsonl", progress=False)
    return source, folder / "out.jsonl"


def test_resume_refuses_a_partial_made_from_another_input_naming_both(model_dir, tmp_path):
    _, out = stopped_run(model_dir, tmp_path / "a")
    other, _ = stopped_run(model_dir, tmp_path / "b")  # the same base name, in another folder
    with pytest.raises(
        OutputError, match=r"cannot be resumed: input: it was made with .*a/in\.jsonl, this run has .*b/in"
    ):
        annotate(model_dir, other, out, progress=False, resume=True)


def test_resume_refuses_a_partial_made_by_another_pipeline(model_dir, tmp_path):
    import shutil

    source, out = stopped_run(model_dir, tmp_path / "run")
    shutil.copytree(model_dir, tmp_path / "other-model")
    with pytest.raises(
        OutputError, match=r"cannot be resumed: pipeline: it was made with .*, this run has .*other-model"
    ):
        annotate(tmp_path / "other-model", source, out, progress=False, resume=True)


def test_resume_refuses_other_output_changing_options(model_dir, tmp_path):
    source, out = stopped_run(model_dir, tmp_path / "run")
    with pytest.raises(OutputError, match=r"--engine: it was made with \(not given\), this run has torch"):
        annotate(model_dir, source, out, progress=False, resume=True, engine="torch")


def test_resume_refuses_an_input_edited_before_the_resume_point(model_dir, tmp_path):
    source, out = stopped_run(model_dir, tmp_path / "run")
    lines = source.read_text().splitlines()
    lines[2] = json.dumps({"text": "an edited record"})
    lines[len(TEXTS) * 3] = json.dumps({"text": "the fixed line"})
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=r"in\.jsonl:3: differs from the record the partial output holds for in\.jsonl:3"
    ):
        annotate(model_dir, source, out, progress=False, resume=True)


def test_resume_refuses_a_longer_partial_naming_the_input(model_dir, tmp_path):
    source, out = stopped_run(model_dir, tmp_path / "run")
    source.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS) + "\n")
    with pytest.raises(InputError, match=rf"{source}: the partial output holds a record for in\.jsonl:5"):
        annotate(model_dir, source, out, progress=False, resume=True)


def test_a_partial_without_its_record_is_not_resumed(model_dir, tmp_path):
    source, out = stopped_run(model_dir, tmp_path / "run")
    (tmp_path / "run" / "out.jsonl.partial.json").unlink()
    with pytest.raises(OutputError, match=r"cannot tell what it was made from"):
        annotate(model_dir, source, out, progress=False, resume=True)


def test_a_second_run_on_the_same_output_names_the_run_writing_it(model_dir, tmp_path):
    from spacy_wnut.data.partials import claim

    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    first = claim(tmp_path / "out.jsonl", kind="file", inputs=[source])  # what a live run holds
    first.write_info({"input": str(source)})
    try:
        for options in ({}, {"overwrite": True}, {"resume": True}):
            with pytest.raises(OutputError, match=rf"another run \(pid {os.getpid()}\) is writing it"):
                annotate(model_dir, source, tmp_path / "out.jsonl", progress=False, **options)
        assert (tmp_path / "out.jsonl.partial").exists()
    finally:
        first.release()
    annotate(model_dir, source, tmp_path / "out.jsonl", progress=False, overwrite=True)
    assert entity_triples(read_jsonl(tmp_path / "out.jsonl")) == GOLD
    assert not (tmp_path / "out.jsonl.partial").exists() and not (tmp_path / "out.jsonl.partial.json").exists()


def test_a_full_disk_keeps_the_partial_and_says_how_to_resume(model_dir, tmp_path):
    import resource

    source = write_jsonl(tmp_path / "in.jsonl", [f"{TEXTS[i % 4]} number {i}" for i in range(400)], start=1)
    out = tmp_path / "out.jsonl"
    command = wnut_command("annotate", model_dir, source, out, "--batch-size", "16", "--no-progress")

    def limit_file_size():  # a file-size limit: writing past it fails with EFBIG, as a full disk with ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    result = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size)
    assert result.returncode == 1, result.stderr
    (message,) = [line for line in result.stderr.splitlines() if line.startswith("✘")]
    assert f"{out}.partial: cannot write it: File too large [Errno 27]" in message, message
    assert "is kept with the" in message and "rerun with --resume" in message and "Traceback" not in result.stderr
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["line"] for r in read_jsonl(out)] == list(range(1, 401))


def test_jsonl_output_is_standard_json_with_line_separators_escaped(model_dir, tmp_path):
    (tmp_path / "in.jsonl").write_text(
        json.dumps({"text": "Tom Hanks\u2028rocks\u2029here", "weight": float("nan"), "big": float("inf")}) + "\n"
    )
    annotate(model_dir, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False)
    raw = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert "\u2028" not in raw and "\u2029" not in raw and "\\u2028" in raw
    assert "NaN" not in raw and "Infinity" not in raw
    (record,) = [json.loads(line) for line in raw.splitlines()]
    assert record["text"] == "Tom Hanks\u2028rocks\u2029here" and record["weight"] is None and record["big"] is None


def test_a_link_to_another_file_system_is_replaced_there_and_its_partial_lives_beside_the_target(
    model_dir, tmp_path, other_file_system
):
    target = other_file_system / "real.jsonl"
    link = tmp_path / "out.jsonl"
    link.symlink_to(target)  # dangling until the run is complete
    lines = [json.dumps({"text": t}) for t in TEXTS] + ["{broken"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="invalid JSON"):
        annotate(model_dir, source, link, progress=False)
    assert (other_file_system / "real.jsonl.partial").is_file() and not (tmp_path / "out.jsonl.partial").exists()
    source.write_text("\n".join(lines[:-1]) + "\n")
    annotate(model_dir, source, link, progress=False, resume=True)
    assert link.is_symlink() and entity_triples(read_jsonl(target)) == GOLD
    assert sorted(p.name for p in other_file_system.iterdir()) == ["real.jsonl"]


@pytest.mark.parametrize("suffix", [".jsonl", ".spacy"])
def test_an_output_in_a_read_only_folder_is_one_line(model_dir, tmp_path, read_only_dir, suffix):
    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    out = read_only_dir / f"out{suffix}"
    result = subprocess.run(
        wnut_command("annotate", model_dir, source, out, "--no-progress"), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("✘")]
    assert f"{out}.partial: cannot create the partial output there" in line and f"{read_only_dir} must be" in line


def test_dev_stdout_redirected_to_a_file_is_written_to_not_beside(model_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    redirected = tmp_path / "redirected.jsonl"
    with redirected.open("w") as stdout:
        stdout.write(json.dumps({"text": "written before", "entities": []}) + "\n")
        stdout.flush()
        result = subprocess.run(
            wnut_command("annotate", model_dir, source, "/dev/stdout", "--no-progress"),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr  # no --overwrite: a stream holds no earlier result
    records = read_jsonl(redirected)
    assert records[0]["text"] == "written before" and entity_triples(records[1:]) == GOLD
    assert not os.path.exists("/dev/stdout.partial") and not os.path.exists("/dev/stdout.partial.json")
