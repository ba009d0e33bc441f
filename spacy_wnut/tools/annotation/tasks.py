"""What every tool's reader gives the importer: tasks with text, spans and where they came from.

A reader turns one tool's export into `ReadTask`s, each located (`file:line`,
or `file task ID` for a JSON list) and keyed by the `(source, line)` that
`export-tasks` wrote; it counts in the `ImportReport` the tasks that give no
doc (no annotation, cancelled, rejected) and the choices it made (which of
several annotations won). Everything a reader cannot read is an `InputError`
that says where, and, for a file of another tool, which `--format` it looks like.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ...data.conll import read_lines
from ...errors import InputError

_LISTED = 20  # places listed per kind of repair or skip


@dataclass
class ReadSpan:
    """One entity span as the tool wrote it: character offsets, label, and where it is."""

    start: int
    end: int
    label: str
    where: str


@dataclass
class ReadTask:
    """One task of an export: where, key, text, spans and (where the tool keeps them) tokens."""

    where: str
    key: Optional[Tuple[str, int]]
    text: str
    spans: List[ReadSpan]
    tokens: Optional[List[Tuple[int, int]]] = None  # character offsets of the tool's tokens
    order: Tuple = ()  # later tasks of one key win: (time stamp, position)


@dataclass
class ImportReport:
    """Counts, with places, of everything an import skipped, chose or repaired."""

    skipped: Counter = field(default_factory=Counter)
    skipped_where: Dict[str, List[str]] = field(default_factory=dict)
    repairs: Counter = field(default_factory=Counter)
    repair_where: Dict[str, List[str]] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        """Count a task that gives no doc."""
        self.skipped[reason] += 1
        listed = self.skipped_where.setdefault(reason, [])
        if len(listed) < _LISTED:
            listed.append(where)

    def repair(self, kind: str, where: str) -> None:
        """Count a repair or a choice made by rule."""
        self.repairs[kind] += 1
        listed = self.repair_where.setdefault(kind, [])
        if len(listed) < _LISTED:
            listed.append(where)


def read_key(value: Dict[str, Any], where: str) -> Optional[Tuple[str, int]]:
    """The `(source, line)` key of a task's data or meta; None when it has none; an error when it is bad."""
    if not isinstance(value, dict) or "source" not in value or "line" not in value:
        return None
    source, line = value.get("source"), value.get("line")
    if not isinstance(source, str) or isinstance(line, bool) or not isinstance(line, int):
        raise InputError(where, f"the key needs a string 'source' and a whole-number 'line', got {source!r}, {line!r}")
    return (source, line)


def read_offsets(start: Any, end: Any, text: str, where: str) -> Tuple[int, int]:
    """Character offsets checked against the text: whole numbers, 0 <= start < end <= len(text)."""
    if any(isinstance(x, bool) or not isinstance(x, int) for x in (start, end)):
        raise InputError(where, f"span offsets must be whole numbers, got start {start!r}, end {end!r}")
    if not 0 <= start < end <= len(text):
        raise InputError(where, f"span [{start}, {end}) is not inside the text ({len(text)} characters)")
    return start, end


def read_jsonl(path: Path, expected: str, shown: Optional[Path] = None) -> Iterator[Tuple[int, Any]]:
    """(line number, parsed JSON) of every non-blank line of a JSON-lines export (named `shown` in errors)."""
    for number, raw in read_lines(path):
        where = f"{shown or path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(where, f"undecodable bytes {raw[err.start : err.end]!r} at byte {err.start}") from None
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            hint = wrong_format_hint(path, expected)
            raise InputError(where, f"invalid JSON ({err.msg} at column {err.colno}){hint}") from None
        yield number, data


def guess_format(path: Path) -> Optional[str]:
    """Which tool's file `path` looks like ("label-studio", "label-studio JSON_MIN", "doccano", "prodigy"), or None."""
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16).lstrip(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return None
    if head.startswith(b"["):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        first = data[0] if isinstance(data, list) and data else None
        if isinstance(first, dict) and isinstance(first.get("data"), dict):
            return "label-studio"
        if isinstance(first, dict) and "annotation_id" in first:
            return "label-studio JSON_MIN"
        return None
    first_line = head.split(b"\n", 1)[0]
    try:
        data = json.loads(first_line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("data"), dict):
        return "label-studio"
    if "tokens" in data or "spans" in data or "answer" in data:
        return "prodigy"
    if "label" in data or "entities" in data:
        return "doccano"
    return None


def wrong_format_hint(path: Path, expected: str) -> str:
    """ "; it looks like a X export: pass --format X" when `path` looks like another tool's file."""
    guess = guess_format(path)
    if guess is None or guess == expected:
        return ""
    if guess == "label-studio JSON_MIN":
        return "; it looks like Label Studio's JSON_MIN export: export the project as JSON instead"
    return f"; it looks like a {guess} file: pass --format {guess}"
