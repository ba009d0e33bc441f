"""doccano: sequence-labeling JSONL out (`text`, `label: [[start, end, label], ...]`); its export back in.

Out: one JSON object per line, as doccano's "Sequence labeling" JSONL import
reads it (Column Text `text`, Column Label `label`); doccano keeps every
other field as the example's metadata and writes it back on export: the key
(`source`, `line`), `uncertainty`, `entity_scores` (one per `label` entry),
`model_version` and any input metadata (`input_meta`). The imported labels
are the model's predictions, shown to annotators as annotations to correct.

In: doccano's JSONL export (`id`, `text`, `label`, the metadata, `Comments`),
or the `.zip` it downloads when that holds one file. A project without
collaborative annotation exports one file per annotator: import the one to
train on. doccano cannot tell "no entities" from "not looked at", so export
with "Export only approved documents" to leave out texts nobody confirmed.
"""

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List

from ...errors import InputError
from .predict import Prediction
from .tasks import ImportReport, ReadSpan, ReadTask, read_jsonl, read_key, read_offsets, wrong_format_hint

NAME = "doccano"
SUFFIX = ".jsonl"


def task(prediction: Prediction, model_version: str) -> Dict[str, Any]:
    """One doccano JSONL record holding the pipeline's prediction."""
    record: Dict[str, Any] = {
        "text": prediction.text,
        "label": [[e["start"], e["end"], e["label"]] for e in prediction.entities],
        "source": prediction.source,
        "line": prediction.line,
        "uncertainty": round(prediction.uncertainty, 6),
        "entity_scores": [None if e["score"] is None else round(e["score"], 6) for e in prediction.entities],
        "model_version": model_version,
    }
    if prediction.meta:
        record["input_meta"] = prediction.meta
    return record


def write(tasks: Iterable[Dict[str, Any]], path: Path) -> None:
    """Write records as JSON lines."""
    with path.open("w", encoding="utf-8") as f:
        for record in tasks:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read(path: Path, report: ImportReport, *, use_predictions: bool = False) -> Iterator[ReadTask]:
    """The records of a doccano sequence-labeling JSONL export (a `.jsonl`, or a `.zip` of one).

    Every record counts as annotated: doccano's labels are the annotation
    (`use_predictions` changes nothing here).
    """
    if zipfile.is_zipfile(path):
        yield from _read_zip(path, report)
        return
    yield from _read_lines(path, path, report)


def _read_zip(path: Path, report: ImportReport) -> Iterator[ReadTask]:
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if m.endswith(".jsonl") and not m.endswith("/")]
        if len(members) != 1:
            found = ", ".join(members) or "none"
            raise InputError(
                str(path),
                f"a doccano export holding one .jsonl file is needed, found {found}; a project without "
                "collaborative annotation exports one file per annotator: unzip it and import the one to train on",
            )
        with tempfile.TemporaryDirectory() as tmp:
            extracted = Path(archive.extract(members[0], tmp))
            yield from _read_lines(extracted, Path(f"{path}/{members[0]}"), report)


def _read_lines(path: Path, shown: Path, report: ImportReport) -> Iterator[ReadTask]:
    for number, record in read_jsonl(path, NAME, shown=shown):
        where = f"{shown}:{number}"
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            hint = wrong_format_hint(path, NAME)
            raise InputError(where, f"not a doccano record: a JSON object with a string 'text' is needed{hint}")
        text = record["text"]
        # "labels": older doccano exports; "entities": projects with relations.
        column = next((name for name in ("label", "labels", "entities") if name in record), None)
        if column is None:
            hint = wrong_format_hint(path, NAME)
            raise InputError(where, f"not a doccano sequence-labeling record: no 'label' list{hint}")
        items = _listed(record, column, where)
        spans = [_span(item, text, f"{where} {column} {i}") for i, item in enumerate(items)]
        yield ReadTask(where, read_key(record, where), text, spans, order=("", number))


def _listed(record: Dict[str, Any], name: str, where: str) -> List[Any]:
    value = record[name]
    if not isinstance(value, list):
        raise InputError(where, f"'{name}' must be a list of spans, got {type(value).__name__}")
    return value


def _span(item: Any, text: str, where: str) -> ReadSpan:
    """A `[start, end, label]` triple, or a `{start_offset, end_offset, label}` object."""
    if isinstance(item, dict):
        start, end, label = item.get("start_offset"), item.get("end_offset"), item.get("label")
    elif isinstance(item, list) and len(item) == 3:
        start, end, label = item
    else:
        raise InputError(where, f"a span is [start, end, label], got {item!r}")
    if not isinstance(label, str) or not label:
        raise InputError(where, f"a span's label must be a non-empty string, got {label!r}")
    start, end = read_offsets(start, end, text, where)
    return ReadSpan(start, end, label, where)
