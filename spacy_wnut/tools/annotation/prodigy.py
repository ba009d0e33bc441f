"""Prodigy: `ner_manual` tasks out (`text`, `tokens`, `spans`, `meta`); `prodigy db-out` back in.

Out: one task per line in the `ner_manual` interface's format: the tokens the
pipeline tokenized into (`start`, `end`, `id`, `ws`), the predicted `spans`
(character offsets, `token_start`/`token_end` inclusive, `label`, and the
entity's `score`, as `ner.teach` gives it) and a `meta` block Prodigy shows
under the text: the key (`source`, `line`), `uncertainty`, `model_version`
and any input metadata (`input_meta`).

In: `prodigy db-out DATASET` JSONL: `answer` "accept" is an annotation;
"reject" and "ignore" are skipped and counted; a line without `answer` was
never annotated and is skipped unless `use_predictions` takes its spans. Tasks
of binary interfaces (`ner`, from `ner.teach`) are refused: one accepted
suggestion says nothing of the rest of the text. Several lines of one key (one
per annotator or session) are resolved by the importer, the latest
`_timestamp` winning.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Tuple

from ...errors import InputError
from .predict import Prediction
from .tasks import ImportReport, ReadSpan, ReadTask, read_jsonl, read_key, read_offsets, wrong_format_hint

NAME = "prodigy"
SUFFIX = ".jsonl"
VIEW_ID = "ner_manual"
ANSWERS = ("accept", "reject", "ignore")


def task(prediction: Prediction, model_version: str) -> Dict[str, Any]:
    """One `ner_manual` task holding the pipeline's prediction."""
    tokens = [
        {"text": text, "start": start, "end": end, "id": i, "ws": ws}
        for i, (start, end, text, ws) in enumerate(prediction.tokens)
    ]
    first = {start: i for i, (start, _, _, _) in enumerate(prediction.tokens)}
    last = {end: i for i, (_, end, _, _) in enumerate(prediction.tokens)}
    spans = []
    for e in prediction.entities:
        span = {
            "start": e["start"],
            "end": e["end"],
            "token_start": first[e["start"]],
            "token_end": last[e["end"]],
            "label": e["label"],
        }
        if e["score"] is not None:
            span["score"] = round(e["score"], 6)
        spans.append(span)
    meta: Dict[str, Any] = {
        "source": prediction.source,
        "line": prediction.line,
        "uncertainty": round(prediction.uncertainty, 6),
        "model_version": model_version,
    }
    if prediction.meta:
        meta["input_meta"] = prediction.meta
    return {"text": prediction.text, "tokens": tokens, "spans": spans, "meta": meta}


def write(tasks: Iterable[Dict[str, Any]], path: Path) -> None:
    """Write tasks as JSON lines."""
    with path.open("w", encoding="utf-8") as f:
        for item in tasks:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


def read(path: Path, report: ImportReport, *, use_predictions: bool = False) -> Iterator[ReadTask]:
    """The tasks of a `prodigy db-out` export of `ner_manual` annotations (or of the tasks `export-tasks` wrote).

    use_predictions (bool): take the spans of a task nobody answered.
    """
    for number, item in read_jsonl(path, NAME):
        where = f"{path}:{number}"
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            hint = wrong_format_hint(path, NAME)
            raise InputError(where, f"not a Prodigy task: a JSON object with a string 'text' is needed{hint}")
        if "tokens" not in item and "spans" not in item and "answer" not in item:
            hint = wrong_format_hint(path, NAME)
            raise InputError(where, f"not a Prodigy ner_manual task: no 'tokens', 'spans' or 'answer'{hint}")
        view = item.get("_view_id")
        if view is not None and view != VIEW_ID:
            raise InputError(
                where,
                f"a task of the {view!r} interface: only {VIEW_ID!r} annotations say where every entity "
                "of the text is (binary 'ner' answers from ner.teach are about one suggestion)",
            )
        if not _answered(item, where, report, use_predictions):
            continue
        text = item["text"]
        tokens = _tokens(item.get("tokens"), text, where) if item.get("tokens") is not None else None
        spans = [_span(span, text, tokens, f"{where} span {i}") for i, span in enumerate(item.get("spans") or [])]
        stamp = item.get("_timestamp")
        order = (stamp if isinstance(stamp, (int, float)) else 0, number)
        yield ReadTask(where, read_key(item.get("meta"), where), text, spans, tokens=tokens, order=order)


def _answered(item: Dict[str, Any], where: str, report: ImportReport, use_predictions: bool) -> bool:
    answer = item.get("answer")
    if answer == "accept":
        return True
    if answer in ("reject", "ignore"):
        report.skip(f"answered {answer!r} by the annotator", where)
        return False
    if answer is not None:
        raise InputError(where, f"'answer' must be one of {ANSWERS}, got {answer!r}")
    if use_predictions:
        report.repair("not annotated: the model's spans taken (--use-predictions)", where)
        return True
    report.skip("not annotated, no 'answer' (pass --use-predictions to take the model's spans)", where)
    return False


def _tokens(tokens: Any, text: str, where: str) -> List[Tuple[int, int]]:
    """The tokens' character offsets, checked: in order, not overlapping, each its text's characters."""
    if not isinstance(tokens, list):
        raise InputError(where, f"'tokens' must be a list, got {type(tokens).__name__}")
    offsets: List[Tuple[int, int]] = []
    for i, token in enumerate(tokens):
        here = f"{where} token {i}"
        if not isinstance(token, dict):
            raise InputError(here, f"a token is an object with 'start' and 'end', got {token!r}")
        start, end = read_offsets(token.get("start"), token.get("end"), text, here)
        if offsets and start < offsets[-1][1]:
            raise InputError(here, f"starts at {start}, inside the token before it (which ends at {offsets[-1][1]})")
        shown = token.get("text")
        if shown is not None and shown != text[start:end]:
            raise InputError(here, f"token text {shown!r} is not the text at [{start}, {end}): {text[start:end]!r}")
        offsets.append((start, end))
    return offsets


def _span(span: Any, text: str, tokens: Any, where: str) -> ReadSpan:
    if not isinstance(span, dict):
        raise InputError(where, f"a span is an object with 'start', 'end' and 'label', got {span!r}")
    label = span.get("label")
    if not isinstance(label, str) or not label:
        raise InputError(where, f"a span's label must be a non-empty string, got {label!r}")
    start, end = read_offsets(span.get("start"), span.get("end"), text, where)
    first, last = span.get("token_start"), span.get("token_end")
    if tokens is not None and first is not None and last is not None:
        fits = isinstance(first, int) and isinstance(last, int) and 0 <= first <= last < len(tokens)
        if not fits or tokens[first][0] != start or tokens[last][1] != end:
            raise InputError(
                where,
                f"token_start {first!r} and token_end {last!r} (inclusive) are not the tokens of [{start}, {end})",
            )
    return ReadSpan(start, end, label, where)
