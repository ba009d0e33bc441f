"""Label Studio: tasks with `predictions` and a labeling config out; the project's JSON export back in.

Out: a JSON list of tasks (Label Studio's import format). Each task's `data`
holds the text, the key (`source`, `line`), the text's `uncertainty` (a
column the Data Manager can sort by) and any input metadata (`input_meta`);
its one prediction holds a `labels` result per entity (character offsets,
text, label, the entity's `score`), the prediction's `score` (1 - uncertainty:
sort the Data Manager by it to see the least certain texts first) and the
`model_version`. Beside it, the labeling config for the pipeline's labels.

In: the project's "JSON" export (not JSON_MIN): per task, the annotation
updated last wins (cancelled ones do not count); a task with none is skipped
unless `use_predictions` takes its latest prediction. Offsets are code points
(Python's); offsets that match the region's text only as UTF-16 code units, as
older front ends wrote them, are converted and counted.
"""

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple
from xml.sax.saxutils import quoteattr

from ...errors import InputError
from .predict import Prediction
from .tasks import ImportReport, ReadSpan, ReadTask, read_key, read_offsets, wrong_format_hint

NAME = "label-studio"
SUFFIX = ".json"
# The control and object tag names of the labeling config; every result names them.
FROM_NAME, TO_NAME = "label", "text"
# Distinct background colours, cycled over the labels.
COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#9a6324")


def labeling_config(labels: Sequence[str]) -> str:
    """The labeling config (XML) of a NER project for `labels`, matching the tasks' `from_name`/`to_name`.

    labels (Sequence[str]): the pipeline's entity labels.
    RETURNS (str): the config, to paste into Settings > Labeling Interface > Code.
    """
    lines = ["<View>", f'  <Labels name="{FROM_NAME}" toName="{TO_NAME}">']
    for i, label in enumerate(labels):
        lines.append(f"    <Label value={quoteattr(label)} background={quoteattr(COLOURS[i % len(COLOURS)])}/>")
    lines += ["  </Labels>", f'  <Text name="{TO_NAME}" value="$text"/>', "</View>"]
    return "\n".join(lines) + "\n"


def config_path(output: Path) -> Path:
    """Where the labeling config goes beside the tasks file: `tasks.json` -> `tasks.label_config.xml`."""
    return output.with_name(output.stem + ".label_config.xml")


def task(prediction: Prediction, model_version: str) -> Dict[str, Any]:
    """One Label Studio task holding the pipeline's prediction."""
    data: Dict[str, Any] = {
        "text": prediction.text,
        "source": prediction.source,
        "line": prediction.line,
        "uncertainty": round(prediction.uncertainty, 6),
    }
    if prediction.meta:
        data["input_meta"] = prediction.meta
    result = [
        {
            "id": f"e{i}",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "labels",
            "value": {"start": e["start"], "end": e["end"], "text": e["text"], "labels": [e["label"]]},
            **({"score": round(e["score"], 6)} if e["score"] is not None else {}),
        }
        for i, e in enumerate(prediction.entities)
    ]
    return {
        "data": data,
        "predictions": [{"model_version": model_version, "score": round(prediction.confidence, 6), "result": result}],
    }


def write(tasks: Iterable[Dict[str, Any]], path: Path) -> None:
    """Write tasks as one JSON list, a task per line."""
    with path.open("w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(t, ensure_ascii=False) for t in tasks) + "\n]\n")


def read(path: Path, report: ImportReport, *, use_predictions: bool = False) -> Iterator[ReadTask]:
    """The tasks of a Label Studio JSON export (or of the tasks `export-tasks` wrote).

    path (Path): the export.
    report (ImportReport): counts what is skipped or chosen.
    use_predictions (bool): take a task's latest prediction when it has no annotation.
    YIELDS (ReadTask): one per task that gives a doc.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise InputError(str(path), f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        hint = wrong_format_hint(path, NAME)
        raise InputError(f"{path}:{err.lineno}", f"invalid JSON ({err.msg} at column {err.colno}){hint}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InputError(str(path), "not a Label Studio JSON export: a JSON list of tasks is needed")
    for position, item in enumerate(data, start=1):
        task_id = item.get("id", f"#{position}") if isinstance(item, dict) else f"#{position}"
        where = f"{path} task {task_id}"
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            hint = wrong_format_hint(path, NAME) or "; export the project as JSON"
            raise InputError(where, f"not a Label Studio task: no 'data' object{hint}")
        text = item["data"].get("text")
        if not isinstance(text, str):
            raise InputError(where, "the task's data has no string 'text' (the config's <Text value=\"$text\">)")
        chosen = _choose(item, where, report, use_predictions)
        if chosen is None:
            continue
        source, stamp = chosen
        spans = list(_spans(source.get("result") or [], text, where, report))
        yield ReadTask(where, read_key(item["data"], where), text, spans, order=(stamp, position))


def _choose(
    item: Dict[str, Any], where: str, report: ImportReport, use_predictions: bool
) -> Optional[Tuple[Dict[str, Any], Tuple[int, float]]]:
    """The annotation (or prediction) that stands for the task, and its time stamp; None to skip it."""
    annotations = [a for a in item.get("annotations") or item.get("completions") or [] if isinstance(a, dict)]
    live = [a for a in annotations if not (a.get("was_cancelled") or a.get("skipped"))]
    if live:
        if len(live) > 1:
            report.repair("several annotations: the one updated last kept", where)
        stamps = [_stamp(annotation, where, report) for annotation in live]
        best = max(range(len(live)), key=lambda i: (stamps[i], i))
        return live[best], stamps[best]
    if annotations:
        report.skip("every annotation was cancelled (skipped) by the annotator", where)
        return None
    listed = item.get("predictions") or []
    predictions = [p for p in listed if isinstance(p, dict)]
    if use_predictions and predictions:
        report.repair("no annotation: the model's prediction taken (--use-predictions)", where)
        stamps = [_stamp(prediction, where, report) for prediction in predictions]
        best = max(range(len(predictions)), key=lambda i: (stamps[i], i))
        return predictions[best], stamps[best]
    if use_predictions and listed:
        report.skip("no annotation, and the export holds prediction ids, not predictions", where)
    else:
        report.skip("no annotation (pass --use-predictions to take the model's prediction)", where)
    return None


# Ranks below every real time: an annotation without a readable time stamp never wins over one with.
NO_TIME: Tuple[int, float] = (0, 0.0)


def _stamp(annotation: Dict[str, Any], where: str, report: ImportReport) -> Tuple[int, float]:
    """When the annotation was last updated, as a sortable `(1, POSIX seconds)` (time zones honoured, a
    stamp without one read as UTC, as Label Studio writes them); `NO_TIME` for none, or for one that cannot
    be read (a counted repair)."""
    raw = annotation.get("updated_at") or annotation.get("created_at")
    if raw in (None, ""):
        return NO_TIME
    text = str(raw).strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        report.repair("unreadable updated_at/created_at: ranked below every readable time", where)
        return NO_TIME
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (1, when.timestamp())


def _spans(result: List[Any], text: str, where: str, report: ImportReport) -> Iterator[ReadSpan]:
    for region in result:
        if not isinstance(region, dict):
            raise InputError(where, f"a result item is not an object: {region!r}")
        here = f"{where} region {region.get('id', '?')}"
        kind = region.get("type")
        if kind != "labels":
            report.repair(f"result of type {kind!r} ignored (not an entity span)", here)
            continue
        value = region.get("value")
        labels = value.get("labels") if isinstance(value, dict) else None
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            raise InputError(here, f"an entity needs exactly one label, got {labels!r}")
        start, end = _offsets(value, text, here, report)
        yield ReadSpan(start, end, labels[0], here)


def _offsets(value: Dict[str, Any], text: str, where: str, report: ImportReport) -> Tuple[int, int]:
    """A region's offsets; UTF-16 offsets (that fit its text only that way) are converted and counted."""
    start, end, shown = value.get("start"), value.get("end"), value.get("text")
    if isinstance(shown, str) and isinstance(start, int) and isinstance(end, int) and text[start:end] != shown:
        converted = utf16_to_code_points(text, start, end)
        if converted is not None and text[converted[0] : converted[1]] == shown:
            report.repair("offsets in UTF-16 code units converted to characters", where)
            start, end = converted
        else:
            raise InputError(where, f"region text {shown!r} is not the text at [{start}, {end}): {text[start:end]!r}")
    return read_offsets(start, end, text, where)


def utf16_to_code_points(text: str, start: int, end: int) -> Optional[Tuple[int, int]]:
    """UTF-16 code-unit offsets of `text` as character offsets; None where one falls inside a character."""
    position: Dict[int, int] = {}
    units = 0
    for index, char in enumerate(text):
        position[units] = index
        units += 2 if ord(char) > 0xFFFF else 1
    position[units] = len(text)
    if start not in position or end not in position:
        return None
    return position[start], position[end]
