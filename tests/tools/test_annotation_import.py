"""import-tasks: every bad-input path of each tool's export is a located error or a counted repair."""

import json
import subprocess
import zipfile

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Corpus

from spacy_wnut.errors import InputError, OutputError
from spacy_wnut.tools.annotation.importer import DUPLICATE, NO_KEY, OVERLAP, SNAPPED, import_tasks

from ..util import wnut_command

TEXT = "Tom Hanks is watching Game of Thrones"
LABELS = ["person", "creative-work"]


def region(start, end, label, rid="r1", text=TEXT):
    value = {"start": start, "end": end, "text": text[start:end], "labels": [label]}
    return {"id": rid, "from_name": "label", "to_name": "text", "type": "labels", "value": value}


def ls_task(annotations=(), predictions=(), task_id=1, text=TEXT, line=1):
    data = {"text": text, "source": "in.txt", "line": line}
    return {"id": task_id, "data": data, "annotations": list(annotations), "predictions": list(predictions)}


def annotation(result, updated="2026-01-01T10:00:00Z", aid=1, cancelled=False):
    return {"id": aid, "result": result, "was_cancelled": cancelled, "created_at": updated, "updated_at": updated}


def prodigy_line(spans, answer="accept", line=1, stamp=1, text=TEXT, **extra):
    task = {"text": text, "spans": spans, "meta": {"source": "in.txt", "line": line}, "_timestamp": stamp, **extra}
    if answer is not None:
        task["answer"] = answer
    return json.dumps(task)


def write(tmp_path, content, name):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def run(path, tmp_path, fmt, **options):
    """Import and return (entities per doc as (text, label), summary)."""
    summary = import_tasks(path, tmp_path / "out.spacy", format=fmt, **options)
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    return [[(e.text, e.label_) for e in doc.ents] for doc in docs], summary


def test_span_off_token_boundaries_is_snapped_and_counted(tmp_path):
    path = write(tmp_path, [ls_task([annotation([region(1, 8, "person")])])], "export.json")
    entities, summary = run(path, tmp_path, "label-studio")
    assert entities == [[("Tom Hanks", "person")]]
    assert summary.report.repairs[SNAPPED] == 1
    assert summary.report.repair_where[SNAPPED] == [f"{path} task 1 region r1 'om Hank' -> 'Tom Hanks'"]


def test_span_off_token_boundaries_is_refused_with_strict(tmp_path):
    path = write(tmp_path, [ls_task([annotation([region(1, 8, "person")])])], "export.json")
    with pytest.raises(InputError, match=r"task 1 region r1: span 'om Hank' at \[1, 8\) is not on token boundaries"):
        run(path, tmp_path, "label-studio", strict=True)


def test_span_of_only_whitespace_is_an_error(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[3, 4, "person"]]}) + "\n", "all.jsonl")
    with pytest.raises(InputError, match=r"all\.jsonl:1 label 0: span ' ' at \[3, 4\) covers no token"):
        run(path, tmp_path, "doccano")


def test_span_outside_the_text_is_an_error(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[30, 99, "person"]]}) + "\n", "all.jsonl")
    with pytest.raises(InputError, match=r"all\.jsonl:1 label 0: span \[30, 99\) is not inside the text"):
        run(path, tmp_path, "doccano")


def test_span_that_is_not_a_triple_is_an_error(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[0, 9]]}) + "\n", "all.jsonl")
    with pytest.raises(InputError, match=r"all\.jsonl:1 label 0: a span is \[start, end, label\]"):
        run(path, tmp_path, "doccano")


def test_overlapping_spans_keep_the_longest_and_are_counted(tmp_path):
    spans = [[0, 3, "person"], [0, 9, "person"], [22, 37, "creative-work"]]
    path = write(tmp_path, json.dumps({"text": TEXT, "label": spans}) + "\n", "all.jsonl")
    entities, summary = run(path, tmp_path, "doccano")
    assert entities == [[("Tom Hanks", "person"), ("Game of Thrones", "creative-work")]]
    assert summary.report.repair_where[OVERLAP] == [f"{path}:1 label 0 'Tom' (person)"]


def test_overlapping_spans_are_refused_with_strict(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[0, 3, "person"], [0, 9, "person"]]}) + "\n", "a.jsonl")
    with pytest.raises(InputError, match=r"a\.jsonl:1 label 0: 'Tom' \(person\) overlaps another span \(--strict\)"):
        run(path, tmp_path, "doccano", strict=True)


def test_label_the_labels_do_not_hold_is_an_error(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[0, 9, "PER"]]}) + "\n", "all.jsonl")
    with pytest.raises(InputError, match=r"all\.jsonl:1 label 0: label 'PER' is not one the pipeline knows"):
        run(path, tmp_path, "doccano", labels=LABELS)


def test_label_the_pipeline_does_not_know_is_an_error(tmp_path, trained_nlp):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[0, 9, "PER"]]}) + "\n", "all.jsonl")
    with pytest.raises(InputError, match=r"label 'PER' is not one the pipeline knows \(corporation, creative-work"):
        run(path, tmp_path, "doccano", model=trained_nlp)


def test_any_label_is_taken_without_labels_or_pipeline(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[0, 9, "PER"]]}) + "\n", "all.jsonl")
    assert run(path, tmp_path, "doccano")[0] == [[("Tom Hanks", "PER")]]


def test_label_studio_annotation_updated_last_wins_and_is_counted(tmp_path):
    old = annotation([region(0, 9, "person")], updated="2026-01-02T10:00:00Z", aid=1)
    new = annotation([region(22, 37, "creative-work")], updated="2026-01-03T09:00:00Z", aid=2)
    path = write(tmp_path, [ls_task([new, old])], "export.json")
    entities, summary = run(path, tmp_path, "label-studio")
    assert entities == [[("Game of Thrones", "creative-work")]]
    assert summary.report.repairs == {"several annotations: the one updated last kept": 1}


def test_label_studio_updated_at_is_compared_as_a_time_with_its_time_zone(tmp_path):
    """10:00+05:00 is 05:00 UTC: the correction at 06:00Z came later and must win (as strings it lost)."""
    earlier = annotation([region(0, 9, "person")], updated="2026-12-02T10:00:00+05:00", aid=1)
    later = annotation([region(22, 37, "creative-work")], updated="2026-12-02T06:00:00Z", aid=2)
    path = write(tmp_path, [ls_task([later, earlier])], "export.json")
    entities, _ = run(path, tmp_path, "label-studio")
    assert entities == [[("Game of Thrones", "creative-work")]]


def test_label_studio_unreadable_updated_at_never_wins_and_is_counted(tmp_path):
    readable = annotation([region(22, 37, "creative-work")], updated="2026-01-01T00:00:00.123456Z", aid=1)
    garbage = annotation([region(0, 9, "person")], updated="yesterday-ish", aid=2)
    path = write(tmp_path, [ls_task([readable, garbage])], "export.json")
    entities, summary = run(path, tmp_path, "label-studio")
    assert entities == [[("Game of Thrones", "creative-work")]]
    assert summary.report.repairs["unreadable updated_at/created_at: ranked below every readable time"] == 1


def test_label_studio_cancelled_annotations_do_not_count(tmp_path):
    cancelled = annotation([], updated="2026-01-09T00:00:00Z", aid=2, cancelled=True)
    path = write(
        tmp_path,
        [ls_task([annotation([region(0, 9, "person")]), cancelled]), ls_task([cancelled], task_id=2, line=2)],
        "e.json",
    )
    entities, summary = run(path, tmp_path, "label-studio")
    assert entities == [[("Tom Hanks", "person")]]
    assert summary.report.skipped_where == {
        "every annotation was cancelled (skipped) by the annotator": [f"{path} task 2"]
    }
    assert summary.tasks == 2 and summary.docs == 1


def test_label_studio_task_without_annotation_is_skipped_and_counted(tmp_path):
    prediction = {"model_version": "m", "score": 0.5, "result": [region(0, 9, "person")]}
    path = write(tmp_path, [ls_task(predictions=[prediction])], "export.json")
    summary = import_tasks(path, tmp_path / "out.spacy", format="label-studio")
    assert summary.docs == 0
    assert summary.report.skipped == {"no annotation (pass --use-predictions to take the model's prediction)": 1}


def test_label_studio_use_predictions_takes_the_prediction_of_an_unannotated_task(tmp_path):
    prediction = {"model_version": "m", "score": 0.5, "result": [region(0, 9, "person")]}
    path = write(tmp_path, [ls_task(predictions=[prediction])], "export.json")
    entities, summary = run(path, tmp_path, "label-studio", use_predictions=True)
    assert entities == [[("Tom Hanks", "person")]]
    assert summary.report.repairs == {"no annotation: the model's prediction taken (--use-predictions)": 1}


def test_label_studio_export_of_prediction_ids_cannot_give_predictions(tmp_path):
    path = write(tmp_path, [ls_task(predictions=[7])], "export.json")
    summary = import_tasks(path, tmp_path / "out.spacy", format="label-studio", use_predictions=True)
    assert summary.report.skipped == {"no annotation, and the export holds prediction ids, not predictions": 1}


def test_label_studio_region_with_two_labels_is_an_error(tmp_path):
    bad = region(0, 9, "person")
    bad["value"]["labels"] = ["person", "group"]
    path = write(tmp_path, [ls_task([annotation([bad])])], "export.json")
    with pytest.raises(
        InputError, match=r"task 1 region r1: an entity needs exactly one label, got \['person', 'group'\]"
    ):
        run(path, tmp_path, "label-studio")


def test_label_studio_region_whose_text_is_not_at_its_offsets_is_an_error(tmp_path):
    bad = region(0, 9, "person")
    bad["value"]["text"] = "Meg Ryan"
    path = write(tmp_path, [ls_task([annotation([bad])])], "export.json")
    with pytest.raises(InputError, match=r"region text 'Meg Ryan' is not the text at \[0, 9\): 'Tom Hanks'"):
        run(path, tmp_path, "label-studio")


def test_label_studio_utf16_offsets_are_converted_and_counted(tmp_path):
    text = "😀 Tom Hanks"
    wrong = {"id": "r1", "from_name": "label", "to_name": "text", "type": "labels"}
    wrong["value"] = {"start": 3, "end": 12, "text": "Tom Hanks", "labels": ["person"]}  # UTF-16: the emoji is 2 units
    path = write(tmp_path, [ls_task([annotation([wrong])], text=text)], "export.json")
    entities, summary = run(path, tmp_path, "label-studio")
    assert entities == [[("Tom Hanks", "person")]]
    assert summary.report.repairs == {"offsets in UTF-16 code units converted to characters": 1}


def test_label_studio_result_of_another_type_is_counted_and_left_out(tmp_path):
    choice = {"id": "c1", "from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}
    path = write(tmp_path, [ls_task([annotation([region(0, 9, "person"), choice])])], "export.json")
    entities, summary = run(path, tmp_path, "label-studio")
    assert entities == [[("Tom Hanks", "person")]]
    assert summary.report.repairs == {"result of type 'choices' ignored (not an entity span)": 1}


def test_label_studio_json_min_export_is_refused_with_what_to_do(tmp_path):
    json_min = [{"id": 1, "text": TEXT, "label": [{"start": 0, "end": 9, "labels": ["person"]}], "annotation_id": 3}]
    path = write(tmp_path, json_min, "export.json")
    with pytest.raises(
        InputError,
        match="task 1: not a Label Studio task: no 'data' object; it looks like Label Studio's JSON_MIN export",
    ):
        run(path, tmp_path, "label-studio")


def test_task_without_text_is_an_error(tmp_path):
    path = write(tmp_path, [{"id": 4, "data": {"sentence": TEXT}}], "export.json")
    with pytest.raises(InputError, match=r"task 4: the task's data has no string 'text'"):
        run(path, tmp_path, "label-studio")


def test_duplicate_key_keeps_the_latest_and_counts_the_others(tmp_path):
    lines = [prodigy_line([{"start": 0, "end": 9, "label": "person"}], stamp=20), prodigy_line([], stamp=10)]
    path = write(tmp_path, "\n".join(lines) + "\n", "db-out.jsonl")
    entities, summary = run(path, tmp_path, "prodigy")
    assert entities == [[("Tom Hanks", "person")]]
    assert summary.report.repair_where == {DUPLICATE: [f"{path}:2"]}


def test_duplicate_key_is_refused_with_strict(tmp_path):
    lines = [prodigy_line([], stamp=20), prodigy_line([], stamp=10)]
    path = write(tmp_path, "\n".join(lines) + "\n", "db-out.jsonl")
    with pytest.raises(
        InputError, match=r"db-out\.jsonl:2: the key \('in\.txt', 1\) is also .*db-out\.jsonl:1's \(--strict\)"
    ):
        run(path, tmp_path, "prodigy", strict=True)


def test_duplicate_key_with_another_text_is_an_error(tmp_path):
    lines = [prodigy_line([]), prodigy_line([], text="Meg Ryan")]
    path = write(tmp_path, "\n".join(lines) + "\n", "db-out.jsonl")
    with pytest.raises(InputError, match=r"db-out\.jsonl:2: has the key \('in\.txt', 1\) of .* but not its text"):
        run(path, tmp_path, "prodigy")


def test_task_without_a_key_is_kept_under_its_place_and_counted(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": []}) + "\n", "all.jsonl")
    summary = import_tasks(path, tmp_path / "out.spacy", format="doccano")
    [doc] = DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab)
    assert (doc.user_data["spacy_wnut.source"], doc.user_data["spacy_wnut.line"]) == ("all.jsonl", 1)
    assert summary.report.repair_where == {NO_KEY: [f"{path}:1"]}


def test_key_of_the_wrong_type_is_an_error(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [], "source": "in.txt", "line": "7"}) + "\n", "a.jsonl")
    with pytest.raises(InputError, match=r"a\.jsonl:1: the key needs a string 'source' and a whole-number 'line'"):
        run(path, tmp_path, "doccano")


@pytest.mark.parametrize(
    "content,name,fmt,hint",
    [
        ('{"text": "x", "label": []}\n', "d.jsonl", "prodigy", "it looks like a doccano file: pass --format doccano"),
        (
            '{"text": "x", "label": []}\n{"text": "y", "label": []}\n',
            "d.jsonl",
            "label-studio",
            "pass --format doccano",
        ),
        ('{"text": "x", "tokens": [], "spans": []}\n', "p.jsonl", "doccano", "pass --format prodigy"),
        ('[\n{"data": {"text": "x"}}\n]\n', "t.json", "doccano", "pass --format label-studio"),
        ('[\n{"data": {"text": "x"}}\n]\n', "t.json", "prodigy", "pass --format label-studio"),
    ],
)
def test_file_of_another_tool_is_refused_naming_the_format_it_looks_like(tmp_path, content, name, fmt, hint):
    path = write(tmp_path, content, name)
    with pytest.raises(InputError, match=hint):
        run(path, tmp_path, fmt)


def test_invalid_json_line_is_located(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": []}) + "\n{broken\n", "all.jsonl")
    with pytest.raises(InputError, match=r"all\.jsonl:2: invalid JSON"):
        run(path, tmp_path, "doccano")


def test_prodigy_rejected_and_ignored_tasks_are_skipped_and_counted(tmp_path):
    lines = [
        prodigy_line([], answer="reject", line=1),
        prodigy_line([], answer="ignore", line=2),
        prodigy_line([], line=3),
    ]
    path = write(tmp_path, "\n".join(lines) + "\n", "db-out.jsonl")
    summary = import_tasks(path, tmp_path / "out.spacy", format="prodigy")
    assert summary.docs == 1 and summary.tasks == 3
    assert summary.report.skipped == {"answered 'reject' by the annotator": 1, "answered 'ignore' by the annotator": 1}


def test_prodigy_unanswered_task_is_skipped_unless_predictions_are_used(tmp_path):
    path = write(tmp_path, prodigy_line([{"start": 0, "end": 9, "label": "person"}], answer=None) + "\n", "tasks.jsonl")
    assert import_tasks(path, tmp_path / "a.spacy", format="prodigy").docs == 0
    assert run(path, tmp_path, "prodigy", use_predictions=True)[0] == [[("Tom Hanks", "person")]]


def test_prodigy_binary_ner_answers_are_refused(tmp_path):
    path = write(tmp_path, prodigy_line([{"start": 0, "end": 9, "label": "person"}], _view_id="ner") + "\n", "t.jsonl")
    with pytest.raises(InputError, match=r"t\.jsonl:1: a task of the 'ner' interface: only 'ner_manual'"):
        run(path, tmp_path, "prodigy")


def test_prodigy_unknown_answer_is_an_error(tmp_path):
    path = write(tmp_path, prodigy_line([], answer="yes") + "\n", "t.jsonl")
    with pytest.raises(InputError, match=r"'answer' must be one of \('accept', 'reject', 'ignore'\), got 'yes'"):
        run(path, tmp_path, "prodigy")


def test_prodigy_tokens_become_the_docs_tokens(tmp_path):
    tokens = [{"text": "Tom Hanks", "start": 0, "end": 9, "id": 0}, {"text": "is", "start": 10, "end": 12, "id": 1}]
    spans = [{"start": 0, "end": 9, "token_start": 0, "token_end": 0, "label": "person"}]
    path = write(tmp_path, prodigy_line(spans, text="Tom Hanks is  ", tokens=tokens) + "\n", "t.jsonl")
    run(path, tmp_path, "prodigy")
    [doc] = DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab)
    assert [t.text for t in doc] == ["Tom Hanks", "is", " "] and doc.text == "Tom Hanks is  "


def test_prodigy_token_whose_text_is_not_at_its_offsets_is_an_error(tmp_path):
    tokens = [{"text": "Tim", "start": 0, "end": 3, "id": 0}]
    path = write(tmp_path, prodigy_line([], tokens=tokens) + "\n", "t.jsonl")
    with pytest.raises(InputError, match=r"t\.jsonl:1 token 0: token text 'Tim' is not the text at \[0, 3\): 'Tom'"):
        run(path, tmp_path, "prodigy")


def test_prodigy_tokens_that_leave_text_out_are_an_error(tmp_path):
    tokens = [{"text": "Tom", "start": 0, "end": 3, "id": 0}, {"text": "is", "start": 10, "end": 12, "id": 1}]
    path = write(tmp_path, prodigy_line([], tokens=tokens) + "\n", "t.jsonl")
    with pytest.raises(InputError, match=r"t\.jsonl:1: the tokens leave ' Hanks ' of the text out"):
        run(path, tmp_path, "prodigy")


def test_prodigy_span_whose_token_indices_do_not_fit_its_offsets_is_an_error(tmp_path):
    tokens = [
        {"text": w, "start": TEXT.index(w), "end": TEXT.index(w) + len(w), "id": i} for i, w in enumerate(TEXT.split())
    ]
    spans = [{"start": 0, "end": 9, "token_start": 0, "token_end": 0, "label": "person"}]
    path = write(tmp_path, prodigy_line(spans, tokens=tokens) + "\n", "t.jsonl")
    with pytest.raises(
        InputError, match=r"t\.jsonl:1 span 0: token_start 0 and token_end 0 \(inclusive\) are not the tokens"
    ):
        run(path, tmp_path, "prodigy")


def test_doccano_zip_of_one_file_is_read(tmp_path):
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.writestr("all.jsonl", json.dumps({"text": TEXT, "label": [[0, 9, "person"]]}) + "\n")
    assert run(tmp_path / "export.zip", tmp_path, "doccano")[0] == [[("Tom Hanks", "person")]]


def test_doccano_zip_of_one_file_per_annotator_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.writestr("admin.jsonl", "")
        archive.writestr("ann.jsonl", "")
    with pytest.raises(InputError, match="found admin.jsonl, ann.jsonl; a project without collaborative annotation"):
        run(tmp_path / "export.zip", tmp_path, "doccano")


def test_existing_output_is_replaced_only_with_overwrite(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": []}) + "\n", "all.jsonl")
    (tmp_path / "out.spacy").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        import_tasks(path, tmp_path / "out.spacy", format="doccano")
    assert import_tasks(path, tmp_path / "out.spacy", format="doccano", overwrite=True).docs == 1


def test_missing_export_is_an_error(tmp_path):
    with pytest.raises(InputError, match="nope.json: no such file"):
        import_tasks(tmp_path / "nope.json", tmp_path / "out.spacy", format="label-studio")


def test_imported_docbin_is_a_training_corpus(tmp_path):
    path = write(tmp_path, json.dumps({"text": TEXT, "label": [[0, 9, "person"]]}) + "\n", "all.jsonl")
    import_tasks(path, tmp_path / "train.spacy", format="doccano")
    nlp = spacy.blank("en")
    [example] = Corpus(tmp_path / "train.spacy")(nlp)
    assert example.get_aligned_ner() == ["B-person", "L-person", "O", "O", "O", "O", "O"]


def test_import_command_prints_the_summary_and_fails_in_one_line(tmp_path):
    spans = [[1, 8, "person"]]
    path = write(tmp_path, json.dumps({"text": TEXT, "label": spans, "source": "a", "line": 1}) + "\n", "all.jsonl")
    command = wnut_command("import-tasks", path, tmp_path / "out.spacy", "--format", "doccano", "--labels", "person")
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 tasks, 1 docs" in result.stdout and f"1 × {SNAPPED}" in result.stdout
    strict = subprocess.run(command + ["--strict", "--overwrite"], capture_output=True, text=True)
    assert strict.returncode == 1 and strict.stderr.count("\n") == 1 and "not on token boundaries" in strict.stderr
