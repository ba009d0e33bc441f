"""Records in and out of `annotate`: input files read into keyed records, bad ones located, output rows built.

Every input record has a stable key, `(source, line)`: the input file (its
name, or its path inside an input directory) and its line number (text and
JSONL), row number (Parquet) or doc number (DocBin), counted from 1. A record
that cannot be tagged (undecodable bytes, invalid JSON, no string `text`, text
that is not valid Unicode) is a `BadRecord` carrying the same key and the
reason; readers never raise for one record and never drop one silently.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc

from .conll import UTF8_BOM, read_lines

# Output fields; an input field of the same name moves to `input_<name>`.
RESERVED_FIELDS = ("source", "line", "text", "entities")
RENAMED_PREFIX = "input_"


@dataclass
class Record:
    """One input text (or doc) with its key and metadata."""

    source: str
    line: int
    text: str
    meta: Dict[str, Any] = field(default_factory=dict)
    doc: Optional[Doc] = None
    renamed: Tuple[str, ...] = ()

    @property
    def key(self) -> Tuple[str, int]:
        return (self.source, self.line)


@dataclass
class BadRecord:
    """An input record that cannot be tagged: where it is, and why (`reason` is the short class)."""

    source: str
    line: int
    reason: str
    detail: str

    @property
    def key(self) -> Tuple[str, int]:
        return (self.source, self.line)

    def located(self, path: Union[str, Path]) -> str:
        return f"{path}:{self.line}: {self.reason}: {self.detail}"

    def to_dict(self) -> Dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason, "detail": self.detail}


Item = Union[Record, BadRecord]


def check_unicode(text: str) -> Optional[str]:
    """Why `text` is not valid Unicode text (a lone surrogate, from JSON's `\\ud800`), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"lone surrogate {text[err.start]!r} at character {err.start + 1} (not valid Unicode)"
    return None


def check_length(record: "Record", max_length: int) -> Optional["BadRecord"]:
    """A bad record for a text over `nlp.max_length` (spaCy refuses it, E088), else None."""
    if record.doc is None and len(record.text) > max_length:
        return BadRecord(
            record.source,
            record.line,
            "text too long",
            f"{len(record.text):,} characters, over nlp.max_length ({max_length:,}); split the text",
        )
    return None


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (not JSON) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def json_line(row: Any) -> str:
    """One JSONL line: standard JSON (NaN and infinities become null), UTF-8 text kept, and the
    line and paragraph separators U+2028/U+2029 escaped, as JavaScript and line splitters need."""
    try:
        text = json.dumps(row, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(row), ensure_ascii=False, allow_nan=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def record_from_mapping(source: str, line: int, data: Any) -> Item:
    """A record from a parsed JSON object or table row: a string `text` plus metadata."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return BadRecord(source, line, "missing text", 'a JSON object with a string "text" field is needed')
    meta = {key: value for key, value in data.items() if key != "text"}
    renamed = []
    for name in RESERVED_FIELDS:
        if name in meta:
            new = RENAMED_PREFIX + name
            if new in data:
                return BadRecord(
                    source, line, "reserved field", f"field {name!r} is an output field and {new!r} is taken too"
                )
            meta[new] = meta.pop(name)
            renamed.append(name)
    problem = check_unicode(data["text"]) or check_unicode(json.dumps(meta, ensure_ascii=False))
    if problem:
        return BadRecord(source, line, "invalid text", problem)
    return Record(source, line, data["text"], meta, renamed=tuple(renamed))


def parse_line(source: str, line: int, raw: bytes, fmt: str) -> Optional[Item]:
    """The record of one line of a `.txt` or `.jsonl` file; None for a blank line."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        return BadRecord(source, line, "undecodable bytes", f"{raw[err.start : err.end]!r} at byte {err.start}")
    if not text.strip():
        return None  # the same rule as `is_blank`
    if fmt == "txt":
        return Record(source, line, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return BadRecord(source, line, "invalid JSON", f"{err.msg} at column {err.colno}")
    return record_from_mapping(source, line, data)


def is_blank(raw: bytes) -> bool:
    """Whether a line holds no record (nothing but whitespace), as `parse_line` decides it."""
    return not raw.decode("utf-8", "replace").strip()


def split_lines(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """(line number, raw line) of a whole file's bytes, as `read_lines` gives them for the file."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        yield number, raw + b"\n"


def parse_lines(
    lines: Iterable[Tuple[int, bytes]], fmt: str, source: str, blank: Optional[List[int]] = None
) -> Iterator[Item]:
    """Records of numbered lines of a `.txt` (one text per line) or `.jsonl` file.

    Blank lines' numbers go to `blank`.
    """
    for number, raw in lines:
        item = parse_line(source, number, raw, fmt)
        if item is None:
            if blank is not None:
                blank.append(number)
            continue
        yield item


def read_text_file(path: Path, fmt: str, source: str, blank: Optional[List[int]] = None) -> Iterator[Item]:
    """Records of a `.txt` or `.jsonl` file, streamed; blank lines' numbers go to `blank`."""
    yield from parse_lines(read_lines(path), fmt, source, blank)


def output_row(record: Record, doc: Doc, scores_key: Optional[str] = None) -> Dict[str, Any]:
    """The output record of a tagged doc: key, text, entities (character offsets, label, text, score), metadata."""
    row: Dict[str, Any] = {
        "source": record.source,
        "line": record.line,
        "text": doc.text,
        "entities": entity_rows(doc, scores_key),
    }
    row.update(record.meta)
    return row


def entity_rows(doc: Doc, scores_key: Optional[str] = None) -> List[Dict[str, Any]]:
    """`doc.ents` as character offsets with label, text and score (the component's mean token
    probability, from `doc.spans[scores_key]`; None for an entity the component did not predict)."""
    scores = {}
    if scores_key is not None and scores_key in doc.spans:
        group = doc.spans[scores_key]
        scores = {(s.start, s.end, s.label_): float(x) for s, x in zip(group, group.attrs.get("scores", []))}
    return [
        {
            "start": e.start_char,
            "end": e.end_char,
            "label": e.label_,
            "text": e.text,
            "score": scores.get((e.start, e.end, e.label_)),
        }
        for e in doc.ents
    ]
