"""Tag a stream of texts with a trained pipeline: plain text, JSONL or DocBin in; JSONL, DocBin or HTML out.

Everything streams: input is read line by line (or DocBin by DocBin), docs go
through `nlp.pipe` in batches (optionally in several processes) and are written
as they come out, so memory does not grow with the input. A bad input line
(undecodable bytes, invalid JSON, no string `text`) is fatal by default, with
its file and line; with `skip_bad_lines` it is skipped, counted by reason and
reported with its line number. Nothing is dropped silently.
"""
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from .conll import InputError

INPUT_FORMATS = ("txt", "jsonl", "spacy")
OUTPUT_FORMATS = ("jsonl", "spacy", "html")
SCORES_KEY = "wnut_ner_annotate"
SHARD_SIZE = 10_000
_LISTED = 20  # bad line numbers listed in the summary, per reason


@dataclass
class AnnotateSummary:
    """What `annotate` read, wrote and skipped."""

    docs_in: int = 0
    docs_out: int = 0
    skipped: Counter = field(default_factory=Counter)
    skipped_lines: Dict[str, List[int]] = field(default_factory=dict)
    entities: Counter = field(default_factory=Counter)
    outputs: List[str] = field(default_factory=list)

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        listed = self.skipped_lines.setdefault(reason, [])
        if len(listed) < _LISTED:
            listed.append(line)


def detect_format(path: Path, allowed: Tuple[str, ...], given: Optional[str] = None) -> str:
    """The format named, else the file's suffix (.txt, .jsonl, .spacy, .html)."""
    fmt = given or path.suffix.lstrip(".").lower()
    fmt = {"json": "jsonl", "htm": "html", "text": "txt"}.get(fmt, fmt)
    if fmt not in allowed:
        raise ValueError(f"{path}: cannot tell the format ({fmt or 'no suffix'!r}); use one of {allowed}")
    return fmt


def read_records(
    path: Path, fmt: str, summary: AnnotateSummary, *, skip_bad_lines: bool = False
) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(text, metadata) per input doc; metadata carries the JSONL fields and the line number."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                record = _parse_line(raw, fmt)
            except ValueError as err:
                if not skip_bad_lines:
                    raise InputError(f"{path}:{number}", str(err)) from None
                summary.skip(str(err).split(":")[0], number)
                continue
            if record is None:
                continue
            summary.docs_in += 1
            text, meta = record
            yield text, {**meta, "_line": number}


def _parse_line(raw: bytes, fmt: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise ValueError(f"undecodable bytes: {raw[err.start:err.end]!r} at byte {err.start}") from None
    if fmt == "txt":
        return (line, {}) if line.strip() else None
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError('missing text: a JSON object with a string "text" field is needed')
    text = record.pop("text")
    return text, record


def read_docbin_docs(path: Path, nlp: Language, summary: AnnotateSummary) -> Iterator[Doc]:
    """Docs of a DocBin file or of a directory of them, one file at a time."""
    files = sorted(path.glob("**/*.spacy")) if path.is_dir() else [path]
    for file in files:
        for doc in DocBin().from_disk(file).get_docs(nlp.vocab):
            summary.docs_in += 1
            yield doc


def entity_records(doc: Doc) -> List[Dict[str, Any]]:
    """Entities as char offsets with label and score (the component's mean token probability)."""
    scores = {}
    if SCORES_KEY in doc.spans:
        group = doc.spans[SCORES_KEY]
        scores = {(s.start, s.end, s.label_): float(x) for s, x in zip(group, group.attrs.get("scores", []))}
    return [
        {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text,
         "score": scores.get((e.start, e.end, e.label_))}
        for e in doc.ents
    ]


class _Writer:
    """Writes annotated docs in one output format, as they come."""

    def __init__(self, path: Path, fmt: str, summary: AnnotateSummary, title: str) -> None:
        self.path, self.fmt, self.summary = path, fmt, summary
        self.shard: Optional[DocBin] = None
        self.n_shards = 0
        if fmt == "spacy":
            path.mkdir(parents=True, exist_ok=True)
            self.file = None
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = path.open("w", encoding="utf-8")
            if fmt == "html":
                self.file.write(_HTML_HEAD.format(title=_escape(title)))

    def write(self, doc: Doc, meta: Dict[str, Any]) -> None:
        self.summary.docs_out += 1
        self.summary.entities.update(e.label_ for e in doc.ents)
        if self.fmt == "jsonl":
            record = {"text": doc.text, "entities": entity_records(doc)}
            record.update((k, v) for k, v in meta.items() if k not in record)
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.fmt == "html":
            from spacy import displacy

            with warnings.catch_warnings():  # W006: a doc without entities is normal here
                warnings.filterwarnings("ignore", message=r"\[W006\]")
                markup = displacy.render(doc, style="ent", page=False, jupyter=False)
            self.file.write(markup + "\n<hr>\n")
        else:
            if SCORES_KEY in doc.spans:
                del doc.spans[SCORES_KEY]
            if self.shard is None:
                self.shard = DocBin(store_user_data=True)
            self.shard.add(doc)
            if len(self.shard) >= SHARD_SIZE:
                self._flush_shard()

    def _flush_shard(self) -> None:
        if self.shard is not None and len(self.shard):
            shard_path = self.path / f"{self.n_shards:05d}.spacy"
            self.shard.to_disk(shard_path)
            self.summary.outputs.append(str(shard_path))
            self.n_shards += 1
        self.shard = None

    def close(self) -> None:
        if self.fmt == "spacy":
            self._flush_shard()
            return
        if self.fmt == "html":
            self.file.write("</body></html>\n")
        self.file.close()
        self.summary.outputs.append(str(self.path))


def annotate(
    model: Union[str, Path, Language], input_path: Union[str, Path], output_path: Union[str, Path], *,
    input_format: Optional[str] = None, output_format: Optional[str] = None, batch_size: int = 64,
    n_process: int = 1, skip_bad_lines: bool = False, progress: bool = True,
) -> AnnotateSummary:
    """Tag every doc of `input_path` with the pipeline and write them to `output_path`."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.exists():
        raise FileNotFoundError(f"{input_path}: no such file or directory")
    in_fmt = "spacy" if input_path.is_dir() else detect_format(input_path, INPUT_FORMATS, input_format)
    out_fmt = detect_format(output_path, OUTPUT_FORMATS, output_format)
    nlp = model if isinstance(model, Language) else load_for_annotation(model)
    summary = AnnotateSummary()
    writer = _Writer(output_path, out_fmt, summary, title=str(input_path.name))
    try:
        if in_fmt == "spacy":
            stream: Iterable = ((doc, {}) for doc in read_docbin_docs(input_path, nlp, summary))
        else:
            stream = read_records(input_path, in_fmt, summary, skip_bad_lines=skip_bad_lines)
        docs = nlp.pipe(stream, as_tuples=True, batch_size=batch_size, n_process=n_process)
        for doc, meta in tqdm(docs, unit="doc", desc="annotate", disable=not progress, smoothing=0.1):
            meta.pop("_line", None)
            writer.write(doc, meta)
    finally:
        writer.close()
    return summary


def load_for_annotation(model: Union[str, Path]) -> Language:
    """Load a pipeline; each `wnut_ner` component also writes entity scores for the output."""
    config = spacy.util.load_config(Path(model) / "config.cfg") if Path(model).is_dir() else None
    overrides: Dict[str, Any] = {}
    if config is not None:
        for name, component in config["components"].items():
            if component.get("factory") == "wnut_ner" and not component.get("spans_key"):
                overrides[f"components.{name}.spans_key"] = SCORES_KEY
    return spacy.load(model, config=overrides)


def print_summary(summary: AnnotateSummary) -> None:
    """Docs in/out, skipped lines by reason (with line numbers), entities per label."""
    print(f"docs in: {summary.docs_in}, docs out: {summary.docs_out}")
    for reason, count in summary.skipped.items():
        lines = ", ".join(map(str, summary.skipped_lines[reason]))
        more = " ..." if count > len(summary.skipped_lines[reason]) else ""
        print(f"skipped {count} line(s), {reason}: line {lines}{more}")
    if summary.entities:
        print("entities: " + ", ".join(f"{label} {n}" for label, n in summary.entities.most_common()))
    for output in summary.outputs:
        print(f"wrote {output}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: entities</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}</style>
</head><body><h1>{title}: entities</h1>
"""
