"""export-tasks: each tool's import format, with entity scores, uncertainty and the (source, line) key;
the round trip export -> import with no edits; the tools' published examples read by import-tasks."""

import json
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest
from spacy.tokens import DocBin

from spacy_wnut.errors import InputError, OutputError
from spacy_wnut.tools.annotate import KEY_LINE, KEY_SOURCE
from spacy_wnut.tools.annotation.export import export_tasks
from spacy_wnut.tools.annotation.importer import import_tasks

from ..util import TRAIN_DATA, ents_of, wnut_command

TEXTS = [text for text, _ in TRAIN_DATA]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]
SUFFIX = {"label-studio": ".json", "doccano": ".jsonl", "prodigy": ".jsonl"}


@pytest.fixture
def texts_file(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return path


def export(nlp, source, tmp_path, fmt, **options):
    output = tmp_path / f"tasks-{fmt}{SUFFIX[fmt]}"
    summary = export_tasks(nlp, source, output, format=fmt, progress=False, **options)
    return output, summary


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_label_studio_tasks_hold_predictions_with_scores_and_the_key(trained_nlp, texts_file, tmp_path):
    output, _ = export(trained_nlp, texts_file, tmp_path, "label-studio")
    tasks = json.loads(output.read_text(encoding="utf-8"))
    assert [(t["data"]["source"], t["data"]["line"]) for t in tasks] == [("in.txt", i) for i in (1, 2, 3, 4)]
    [prediction] = tasks[1]["predictions"]
    assert prediction["model_version"] == "en_pipeline-0.0.0"
    assert prediction["score"] == pytest.approx(1 - tasks[1]["data"]["uncertainty"], abs=1e-5)
    regions = prediction["result"]
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regions] == GOLD[1]
    assert all(r["from_name"] == "label" and r["to_name"] == "text" and r["type"] == "labels" for r in regions)
    assert all(r["value"]["text"] == TEXTS[1][r["value"]["start"] : r["value"]["end"]] for r in regions)
    assert all(0.0 < r["score"] <= 1.0 for r in regions)


def test_label_studio_config_names_the_pipeline_labels_and_the_result_tags(trained_nlp, texts_file, tmp_path):
    output, summary = export(trained_nlp, texts_file, tmp_path, "label-studio")
    config = output.with_name("tasks-label-studio.label_config.xml")
    root = ElementTree.fromstring(config.read_text(encoding="utf-8"))
    labels = root.find("Labels")
    assert labels.get("name") == "label" and labels.get("toName") == "text"
    assert [label.get("value") for label in labels] == ["corporation", "creative-work", "location", "person"]
    assert root.find("Text").get("value") == "$text"
    assert summary.outputs == [str(output), str(config)]


def test_doccano_records_are_text_and_label_triples_with_the_key_as_metadata(trained_nlp, texts_file, tmp_path):
    output, _ = export(trained_nlp, texts_file, tmp_path, "doccano")
    records = read_jsonl(output)
    assert [[tuple(span) for span in r["label"]] for r in records] == GOLD
    assert [(r["source"], r["line"]) for r in records] == [("in.txt", i) for i in (1, 2, 3, 4)]
    assert all(len(r["entity_scores"]) == len(r["label"]) and 0 <= r["uncertainty"] <= 1 for r in records)


def test_prodigy_tasks_have_tokens_and_spans_with_inclusive_token_ends(trained_nlp, texts_file, tmp_path):
    output, _ = export(trained_nlp, texts_file, tmp_path, "prodigy")
    task = read_jsonl(output)[1]
    assert [t["text"] for t in task["tokens"]] == TEXTS[1].split()
    assert task["tokens"][0] == {"text": "Tom", "start": 0, "end": 3, "id": 0, "ws": True}
    assert task["tokens"][-1]["ws"] is False
    person, work = task["spans"]
    assert (person["start"], person["end"], person["token_start"], person["token_end"]) == (0, 9, 0, 1)
    assert (work["label"], work["token_start"], work["token_end"]) == ("creative-work", 4, 6)
    assert task["meta"]["source"] == "in.txt" and task["meta"]["line"] == 2 and 0 < person["score"] <= 1


def test_input_metadata_travels_with_each_task(trained_nlp, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": TEXTS[0], "tweet_id": 7, "source": "twitter"}) + "\n", encoding="utf-8")
    output, _ = export(trained_nlp, source, tmp_path, "prodigy")
    [task] = read_jsonl(output)
    assert task["meta"]["input_meta"] == {"tweet_id": 7, "input_source": "twitter"}
    assert task["meta"]["source"] == "in.jsonl"


def test_select_uncertain_writes_the_most_uncertain_first_up_to_the_limit(trained_nlp, texts_file, tmp_path):
    everything, _ = export(trained_nlp, texts_file, tmp_path, "doccano")
    ranked = sorted(read_jsonl(everything), key=lambda r: -r["uncertainty"])
    output, summary = export(trained_nlp, texts_file, tmp_path, "doccano", select="uncertain", limit=2, overwrite=True)
    assert [r["line"] for r in read_jsonl(output)] == [r["line"] for r in ranked[:2]]
    assert summary.selected == 2 and summary.docs_out == 4


def test_select_random_is_the_same_for_the_same_seed(trained_nlp, texts_file, tmp_path):
    lines = []
    for _ in range(2):
        output, _ = export(
            trained_nlp, texts_file, tmp_path, "doccano", select="random", limit=3, seed=5, overwrite=True
        )
        lines.append([r["line"] for r in read_jsonl(output)])
    assert lines[0] == lines[1] and len(set(lines[0])) == 3


def test_docbin_input_is_read_as_annotate_reads_it(trained_nlp, tmp_path):
    docs = [trained_nlp.make_doc(text) for text in TEXTS]
    DocBin(docs=docs).to_disk(tmp_path / "in.spacy")
    output, summary = export(trained_nlp, tmp_path / "in.spacy", tmp_path, "doccano")
    assert [(r["source"], r["line"]) for r in read_jsonl(output)] == [("in.spacy", i) for i in (1, 2, 3, 4)]
    assert [[tuple(s) for s in r["label"]] for r in read_jsonl(output)] == GOLD and summary.docs_in == 4


def test_bad_input_line_stops_the_export_with_its_line_and_writes_nothing(trained_nlp, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Tom Hanks"}\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"in\.jsonl:2: missing text"):
        export(trained_nlp, source, tmp_path, "doccano")
    assert not (tmp_path / "tasks-doccano.jsonl").exists()


def test_bad_input_line_can_be_skipped_and_counted(trained_nlp, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Tom Hanks"}\nnot json\n\n{"text": "apple inc"}\n', encoding="utf-8")
    output, summary = export(trained_nlp, source, tmp_path, "doccano", skip_bad_lines=True)
    assert [r["line"] for r in read_jsonl(output)] == [1, 4]
    assert summary.skipped == {"invalid JSON": 1} and summary.skipped_lines == {"invalid JSON": [2]}
    assert summary.blank_lines == [3]


def test_existing_label_studio_config_is_replaced_only_with_overwrite(trained_nlp, texts_file, tmp_path):
    (tmp_path / "tasks-label-studio.label_config.xml").write_text("<View/>")
    with pytest.raises(OutputError, match="label_config.xml: already exists; pass --overwrite"):
        export(trained_nlp, texts_file, tmp_path, "label-studio")
    export(trained_nlp, texts_file, tmp_path, "label-studio", overwrite=True)


def test_unknown_tool_is_refused(trained_nlp, texts_file, tmp_path):
    with pytest.raises(ValueError, match="--format must be one of"):
        export_tasks(trained_nlp, texts_file, tmp_path / "t.json", format="brat")


@pytest.mark.parametrize("fmt", ["label-studio", "doccano", "prodigy"])
def test_round_trip_with_no_edits_gives_back_the_predictions(trained_nlp, texts_file, tmp_path, fmt):
    output, _ = export(trained_nlp, texts_file, tmp_path, fmt)
    summary = import_tasks(output, tmp_path / "back.spacy", format=fmt, model=trained_nlp, use_predictions=True)
    docs = list(DocBin().from_disk(tmp_path / "back.spacy").get_docs(trained_nlp.vocab))
    predicted = list(trained_nlp.pipe(TEXTS))
    assert ents_of(docs) == ents_of(predicted) == GOLD
    assert [[t.text for t in d] for d in docs] == [[t.text for t in d] for d in predicted]
    assert [(d.user_data[KEY_SOURCE], d.user_data[KEY_LINE]) for d in docs] == [("in.txt", i) for i in (1, 2, 3, 4)]
    assert summary.docs == 4 and not set(summary.report.repairs) - {
        "no annotation: the model's prediction taken (--use-predictions)",
        "not annotated: the model's spans taken (--use-predictions)",
    }


def test_export_command_prints_what_it_selected(model_dir, texts_file, tmp_path):
    command = wnut_command("export-tasks", model_dir, texts_file, tmp_path / "t.json", "--format", "label-studio")
    result = subprocess.run(
        command + ["--select", "uncertain", "--limit", "2", "--no-progress"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "selected 2 of 4 (uncertain)" in result.stdout and "t.label_config.xml" in result.stdout
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.strip().endswith("already exists; pass --overwrite to replace it")


# doccano's published examples of its "Sequence labeling" JSONL import format, as its docs and its
# repository's examples (backend/data_import/pipeline/examples/sequence_labeling/) show them, with
# the default "Column Label" name `label`; written from those docs.
DOCCANO_EXAMPLE = """\
{"text": "EU rejects German call to boycott British lamb.", "label": [ [0, 2, "ORG"], [11, 17, "MISC"], \
[34, 41, "ORG"] ]}
{"text": "Peter Blackburn", "label": [ [0, 15, "PERSON"] ]}
{"text": "President Obama", "label": [ [10, 15, "PERSON"] ]}
"""
# doccano's export as its tutorial (docs/tutorial.md, "Export the dataset") shows it: `labels`, `doc_id`, `username`.
DOCCANO_TUTORIAL_EXPORT = (
    '{"doc_id": 33, "text": "The Hitchhiker\'s Guide to the Galaxy (sometimes referred to as HG2G) is a comedy '
    'science fiction series created by Douglas Adams.", "labels": [[0, 36, "Title"], [63, 67, "Title"], '
    '[74, 96, "Genre"], [115, 128, "Person"]], "username": "admin"}\n'
)
# A line of `prodigy db-out` for the ner_manual interface, in the shape of Prodigy's docs ("Annotation
# interfaces", ner_manual) and of explosion/prodigy-recipes' example-datasets: hashes, `_view_id`,
# `answer`, tokens without `ws` (Prodigy reads a missing `ws` as true), inclusive `token_end`; the text
# is made up, the shape is Prodigy's.
PRODIGY_EXAMPLE = (
    '{"text":"Pearl Jam played in Seattle","meta":{"source":"made up"},"_input_hash":1487477437,'
    '"_task_hash":-1298236362,"tokens":[{"text":"Pearl","start":0,"end":5,"id":0},{"text":"Jam","start":6,"end":9,'
    '"id":1},{"text":"played","start":10,"end":16,"id":2},{"text":"in","start":17,"end":19,"id":3},{"text":"Seattle",'
    '"start":20,"end":27,"id":4}],"_session_id":null,"_view_id":"ner_manual","spans":[{"start":0,"end":9,'
    '"token_start":0,"token_end":1,"label":"ORG"},{"start":20,"end":27,"token_start":4,"token_end":4,'
    '"label":"LOCATION"}],"answer":"accept"}\n'
)


def imported_entities(path, tmp_path, fmt, **options):
    summary = import_tasks(path, tmp_path / "out.spacy", format=fmt, **options)
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(__import__("spacy").blank("en").vocab))
    return [[(e.text, e.label_) for e in doc.ents] for doc in docs], summary


def test_doccano_published_import_example_reads_as_its_entities(tmp_path):
    (tmp_path / "doccano.jsonl").write_text(DOCCANO_EXAMPLE, encoding="utf-8")
    entities, summary = imported_entities(tmp_path / "doccano.jsonl", tmp_path, "doccano")
    assert entities == [
        [("EU", "ORG"), ("German", "MISC"), ("British", "ORG")],
        [("Peter Blackburn", "PERSON")],
        [("Obama", "PERSON")],
    ]
    assert summary.report.repairs == {"no key (source, line): kept under its place in the export": 3}


def test_doccano_tutorial_export_with_labels_key_is_read(tmp_path):
    (tmp_path / "all.jsonl").write_text(DOCCANO_TUTORIAL_EXPORT, encoding="utf-8")
    entities, summary = imported_entities(tmp_path / "all.jsonl", tmp_path, "doccano")
    assert set(summary.report.repairs) == {"no key (source, line): kept under its place in the export"}
    assert entities == [
        [
            ("The Hitchhiker's Guide to the Galaxy", "Title"),
            ("HG2G", "Title"),
            ("comedy science fiction", "Genre"),
            ("Douglas Adams", "Person"),
        ]
    ]


def test_prodigy_db_out_example_keeps_its_tokens_and_spans(tmp_path):
    (tmp_path / "db-out.jsonl").write_text(PRODIGY_EXAMPLE, encoding="utf-8")
    entities, summary = imported_entities(tmp_path / "db-out.jsonl", tmp_path, "prodigy")
    assert entities == [[("Pearl Jam", "ORG"), ("Seattle", "LOCATION")]] and summary.docs == 1
