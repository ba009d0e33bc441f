"""Read and validate WNUT-style CoNLL: one `TOKEN<TAB>TAG` per line, IOB2 tags.

Every problem is either an `InputError` naming the file, the line and what is
wrong, or (for an `I-` tag that does not continue an entity of its type) a
`Repair` that conlleval would also make: the tag starts a new entity. Repairs
are collected in a `ReadReport`, so nothing is changed silently.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import InputError

WNUT17_LABELS: Tuple[str, ...] = (
    "corporation",
    "creative-work",
    "group",
    "location",
    "person",
    "product",
)
BIO_PREFIXES = ("B", "I")
# CoNLL 2003's document marker: a line (or a dataset row) that is no token of any sentence.
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Repair:
    """One tag (or token: NUL characters removed) changed while reading, with where and why."""

    where: str
    problem: str
    old_tag: str
    new_tag: str


@dataclass
class Sentence:
    """One sentence: its words, validated IOB2 tags and where it starts."""

    words: List[str]
    tags: List[str]
    where: str


@dataclass
class ReadReport:
    """What reading saw besides the sentences: counts and every repair made."""

    sentences: int = 0
    tokens: int = 0
    tab_separators: int = 0
    separators: int = 0
    byte_order_mark: bool = False
    docstarts: int = 0
    repairs: List[Repair] = field(default_factory=list)


def split_tag(tag: str) -> Tuple[str, Optional[str]]:
    """Split an IOB2 tag into (prefix, label) on the *first* hyphen only.

    'B-creative-work' -> ('B', 'creative-work'); 'O' -> ('O', None).
    """
    if tag == "O":
        return "O", None
    prefix, sep, label = tag.partition("-")
    if not sep:
        return tag, None
    return prefix, label


def check_tags(
    tags: Sequence[str],
    wheres: Sequence[str],
    *,
    labels: Optional[Sequence[str]],
    strict: bool,
    report: ReadReport,
) -> List[str]:
    """Validate one sentence's IOB2 tags; return them with `I-` starts repaired.

    labels: allowed entity types, or None to accept any.
    strict: raise on an `I-` that continues nothing instead of repairing it.
    """
    fixed: List[str] = []
    current: Optional[str] = None
    for tag, where in zip(tags, wheres):
        prefix, label = split_tag(tag)
        if prefix == "O":
            current = None
            fixed.append(tag)
            continue
        if prefix not in BIO_PREFIXES or not label:
            raise InputError(
                where,
                f"tag {tag!r} is not IOB2: expected 'O', 'B-<type>' or 'I-<type>'",
            )
        if labels is not None and label not in labels:
            raise InputError(
                where,
                f"unknown entity type {label!r} in tag {tag!r}; expected one of {', '.join(labels)}",
            )
        if prefix == "I" and current != label:
            after = f"'{current}' entity" if current else "no entity"
            problem = f"tag {tag!r} continues {after}"
            if strict:
                raise InputError(where, problem + " (strict mode: no repairs)")
            tag = f"B-{label}"
            report.repairs.append(Repair(where, problem + "; started a new entity", f"I-{label}", tag))
        current = label
        fixed.append(tag)
    return fixed


UTF8_BOM = b"\xef\xbb\xbf"


def decode_line(raw: bytes, where: str) -> str:
    """A line of a UTF-8 text file without its line ending; bad bytes (binary data) and CR line endings are errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        binary = b"\x00" in raw  # with bytes that are not UTF-8: a DocBin, an archive, UTF-16 text
        hint = "; the file looks binary (a DocBin, an archive, UTF-16 text?), not UTF-8 text" if binary else ""
        raise InputError(
            where, f"not valid UTF-8: byte {raw[err.start]:#04x} at column {err.start + 1}{hint}"
        ) from None
    if raw.endswith(b"\r\n"):
        raise InputError(where, "CRLF line ending; convert the file to LF line endings (e.g. dos2unix)")
    if b"\r" in raw:
        column = raw.index(b"\r") + 1
        raise InputError(
            where,
            f"carriage return (CR) at column {column}: the file may use old Mac (CR-only) line "
            "endings; convert it to LF line endings (e.g. mac2unix)",
        )
    return text.rstrip("\n")


def read_lines(path: Path, report: Optional["ReadReport"] = None) -> Iterator[Tuple[int, bytes]]:
    """(line number, raw bytes) of a file; a UTF-8 byte-order mark opening it is removed (and noted)."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM) :]
                if report is not None:
                    report.byte_order_mark = True
            yield number, raw


def _decode_lines(path: Path, report: "ReadReport") -> Iterator[Tuple[int, str]]:
    for number, raw in read_lines(path, report):
        yield number, decode_line(raw, f"{path}:{number}")


def read_conll(
    path: Union[str, Path],
    *,
    labels: Optional[Sequence[str]] = WNUT17_LABELS,
    strict: bool = False,
    report: Optional[ReadReport] = None,
) -> Iterator[Sentence]:
    """Yield the validated sentences of a WNUT-style CoNLL file.

    A sentence ends at an empty line or a line holding only whitespace (the
    official train file uses a lone tab in 2,394 places).
    labels: allowed entity types (WNUT 17's by default), None for any.
    report: filled with counts and repairs as the file is read.
    """
    path = Path(path)
    report = report if report is not None else ReadReport()
    words: List[str] = []
    tags: List[str] = []
    wheres: List[str] = []

    def flush() -> Iterator[Sentence]:
        if words:
            fixed = check_tags(tags, wheres, labels=labels, strict=strict, report=report)
            report.sentences += 1
            report.tokens += len(words)
            yield Sentence(list(words), fixed, wheres[0])
            words.clear()
            tags.clear()
            wheres.clear()

    for number, line in _decode_lines(path, report):
        if not line.strip():
            report.separators += 1
            if line == "\t":
                report.tab_separators += 1
            yield from flush()
            continue
        where = f"{path}:{number}"
        fields = line.split("\t")
        if line.split(None, 1)[0] == DOCSTART:
            report.docstarts += 1
            yield from flush()
            continue
        if len(fields) != 2:
            raise InputError(where, f"expected 2 tab-separated fields (TOKEN<TAB>TAG), found {len(fields)}")
        word, tag = fields
        word = clean_word(word, where, strict=strict, report=report)
        words.append(word)
        tags.append(tag)
        wheres.append(where)
    yield from flush()
    if report.sentences == 0:
        what = f"only {report.separators} separator line(s)" if report.separators else "it is empty"
        raise InputError(str(path), f"file holds no sentences ({what})")


def clean_word(word: str, where: str, *, strict: bool, report: ReadReport) -> str:
    """The word without NUL characters (a repair, counted; an error with `strict`), checked by `check_word`."""
    if "\x00" in word:
        if strict:
            raise InputError(where, f"token {word!r} contains a NUL character (strict mode: no repairs)")
        cleaned = word.replace("\x00", "")
        report.repairs.append(Repair(where, f"NUL character(s) removed from token {word!r}", word, cleaned))
        if not cleaned:
            raise InputError(where, "token holds nothing but NUL characters")
        word = cleaned
    check_word(word, where)
    return word


def check_word(word: str, where: str) -> None:
    """Reject tokens spaCy cannot hold as one word: empty or containing whitespace."""
    if not word:
        raise InputError(where, "empty token")
    if any(char.isspace() for char in word):
        raise InputError(where, f"token {word!r} contains whitespace")
