"""Tag a stream of texts with a trained pipeline: plain text, JSONL or DocBin in; JSONL, DocBin or HTML out.

Everything streams: input is read line by line (or DocBin by DocBin), docs go
through `nlp.pipe` in batches (optionally in several processes) and are written
as they come out, so memory does not grow with the input.

Guarantees:
- Output goes to `OUTPUT.partial` and is renamed to `OUTPUT` only when the run
  is complete, so an earlier result is never destroyed or half replaced; an
  existing output is replaced only with `overwrite`, and the input can never
  be the output.
- Every record carries its key (`source`, `line`). A bad record (undecodable
  bytes, invalid JSON, no string `text`, text that is not valid Unicode) stops
  the run with its file and line, after everything read before it is tagged
  and written; with `skip_bad_lines` it is skipped, counted by reason and
  listed. Blank lines are counted. Input fields named like output fields are
  renamed (`entities` -> `input_entities`) and counted. Nothing is dropped silently.
- Ctrl-C or SIGTERM stops the run (and its worker processes) within seconds;
  `OUTPUT.partial` then holds every record tagged so far, complete, and a
  rerun with `resume` continues after the last of them, with no duplicate and no gap.
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

from ..data.convert import docbin_files
from ..data.outputs import atomic_path, check_output, replace
from ..data.records import BadRecord, Item, Record, output_row, read_text_file
from ..errors import InputError, OutputError, UserError
from ..pipeline.component import load_pipeline
from .stopping import stop_on_signals

INPUT_FORMATS = ("txt", "jsonl", "spacy")
OUTPUT_FORMATS = ("jsonl", "spacy", "html")
SCORES_KEY = "wnut_ner_annotate"
SHARD_SIZE = 10_000
PARTIAL_SUFFIX = ".partial"
# DocBin output: each doc's key, in `doc.user_data`.
KEY_SOURCE, KEY_LINE = "spacy_wnut.source", "spacy_wnut.line"
_LISTED = 20  # line numbers listed in the summary, per reason


@dataclass
class AnnotateSummary:
    """What `annotate` read, wrote, skipped, renamed and (on a stop) left to resume."""

    docs_in: int = 0
    docs_out: int = 0
    skipped: Counter = field(default_factory=Counter)
    skipped_lines: Dict[str, List[int]] = field(default_factory=dict)
    blank_lines: List[int] = field(default_factory=list)
    renamed_fields: Counter = field(default_factory=Counter)
    entities: Counter = field(default_factory=Counter)
    outputs: List[str] = field(default_factory=list)
    resumed_after: Optional[Tuple[str, int]] = None
    already_done: int = 0
    interrupted: Optional[str] = None
    partial: Optional[str] = None

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        listed = self.skipped_lines.setdefault(reason, [])
        if len(listed) < _LISTED:
            listed.append(line)


class Interrupted(UserError):
    """The run was stopped by a signal; the summary says what was written and where."""

    def __init__(self, summary: AnnotateSummary, exit_code: int) -> None:
        self.summary = summary
        self.exit_code = exit_code
        super().__init__(
            f"interrupted by {summary.interrupted} after {summary.docs_out} docs; {summary.partial} holds "
            f"them, complete: rerun with --resume to continue"
        )


def detect_format(path: Path, allowed: Tuple[str, ...], given: Optional[str] = None, role: str = "input") -> str:
    """The format named, else the file's suffix (.txt, .jsonl, .spacy, .html)."""
    fmt = (given or path.suffix.lstrip(".")).lower()
    fmt = {"json": "jsonl", "htm": "html", "text": "txt"}.get(fmt, fmt)
    if not fmt:
        raise ValueError(
            f"{path}: cannot tell the {role} format (no suffix); name it with --{role}-format, one of {allowed}"
        )
    if fmt not in allowed:
        raise ValueError(f"{path}: {fmt!r} is not a supported {role} format; use one of {allowed}")
    return fmt


def check_positive(name: str, value: int) -> None:
    """Refuse a count that must be at least 1 (batch sizes, process counts)."""
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def partial_path(output: Path) -> Path:
    """Where a run writes before its output is complete."""
    return output.with_name(output.name + PARTIAL_SUFFIX)


def read_items(
    input_path: Path, fmt: str, nlp: Language, summary: AnnotateSummary, keep_entities: bool
) -> Iterator[Item]:
    """Every input record in order, bad ones included (as `BadRecord`)."""
    if fmt == "spacy":
        yield from read_docbin_records(input_path, nlp, keep_entities)
        return
    yield from read_text_file(input_path, fmt, input_path.name, summary.blank_lines)


def read_docbin_records(path: Path, nlp: Language, keep_entities: bool) -> Iterator[Record]:
    """The docs of a DocBin file or directory as records (tokens kept; entities cleared unless `keep_entities`)."""
    for file in docbin_files(path):
        source = file.name if file == path else str(file.relative_to(path))
        try:
            docs = list(DocBin().from_disk(file).get_docs(nlp.vocab))
        except Exception as err:
            raise InputError(str(file), f"not a readable spaCy DocBin ({type(err).__name__}: {err})") from None
        for number, doc in enumerate(docs, start=1):
            if not keep_entities:
                doc.set_ents([], default="missing")
            doc.user_data.pop(KEY_SOURCE, None)
            doc.user_data.pop(KEY_LINE, None)
            yield Record(source, number, doc.text, doc=doc)


class _Writer:
    """Writes tagged records to the partial output in one format, as they come."""

    def __init__(self, path: Path, fmt: str, title: str, resume: bool) -> None:
        self.path, self.fmt = path, fmt
        self.last_key: Optional[Tuple[str, int]] = None
        self.already_done = 0
        self.shard: Optional[DocBin] = None
        self.n_shards = 0
        self.file = None
        if fmt == "spacy":
            if resume:
                self._resume_shards()
            else:
                path.mkdir(parents=True)
        elif fmt == "jsonl" and resume:
            self._resume_jsonl()
            self.file = path.open("a", encoding="utf-8")
        else:
            self.file = path.open("w", encoding="utf-8")
            if fmt == "html":
                self.file.write(_HTML_HEAD.format(title=_escape(title)))

    def _resume_jsonl(self) -> None:
        """Keep the complete records of an interrupted run (a half-written last line is cut off)."""
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        lines = data[:keep].splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
                self.last_key = (row["source"], int(row["line"]))
            except (ValueError, KeyError, TypeError):
                raise InputError(
                    f"{self.path}:{number}", "not a record this command wrote; cannot resume from it"
                ) from None
        self.already_done = len(lines)
        if keep < len(data):
            with self.path.open("r+b") as f:
                f.truncate(keep)

    def _resume_shards(self) -> None:
        shards = sorted(self.path.glob("[0-9]" * 5 + ".spacy"))
        self.n_shards = len(shards)
        if shards:
            from spacy.vocab import Vocab

            docs = [doc for shard in shards for doc in DocBin().from_disk(shard).get_docs(Vocab())]
            self.already_done = len(docs)
            if docs:
                self.last_key = (docs[-1].user_data[KEY_SOURCE], int(docs[-1].user_data[KEY_LINE]))

    def write(self, record: Record, doc: Doc) -> None:
        if self.fmt == "jsonl":
            self.file.write(json.dumps(output_row(record, doc, SCORES_KEY), ensure_ascii=False) + "\n")
        elif self.fmt == "html":
            from spacy import displacy

            with warnings.catch_warnings():  # W006: a doc without entities is normal here
                warnings.filterwarnings("ignore", message=r"\[W006\]")
                markup = displacy.render(doc, style="ent", page=False, jupyter=False)
            self.file.write(
                f'<div class="record" data-source="{_escape(record.source)}" data-line="{record.line}">'
                f"{markup}</div>\n<hr>\n"
            )
        else:
            if SCORES_KEY in doc.spans:
                del doc.spans[SCORES_KEY]
            doc.user_data[KEY_SOURCE], doc.user_data[KEY_LINE] = record.source, record.line
            if self.shard is None:
                self.shard = DocBin(store_user_data=True)
            self.shard.add(doc)
            if len(self.shard) >= SHARD_SIZE:
                self.flush()

    def flush(self) -> None:
        """Make everything written so far durable and complete (a DocBin shard is closed)."""
        if self.file is not None:
            self.file.flush()
        elif self.shard is not None and len(self.shard):
            with atomic_path(self.path / f"{self.n_shards:05d}.spacy") as tmp:
                self.shard.to_disk(tmp)
            self.n_shards += 1
            self.shard = None

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            if self.fmt == "html":
                self.file.write("</body></html>\n")
            self.file.close()
            self.file = None


def _records_to_tag(
    items: Iterable[Item],
    summary: AnnotateSummary,
    skip_bad_lines: bool,
    resume_after: Optional[Tuple[str, int]],
    fatal: List[BadRecord],
) -> Iterator[Tuple[Union[str, Doc], Record]]:
    """(text or doc, record) for `nlp.pipe`; a fatal bad record ends the stream (kept in `fatal`)."""
    skipping = resume_after is not None
    for item in items:
        if skipping:
            skipping = item.key != resume_after
            continue
        if isinstance(item, BadRecord):
            if not skip_bad_lines:
                fatal.append(item)
                return
            summary.skip(item.reason, item.line)
            continue
        summary.docs_in += 1
        summary.renamed_fields.update(item.renamed)
        doc, item.doc = item.doc, None
        yield (doc if doc is not None else item.text), item
    if skipping:
        raise InputError(
            str(resume_after[0]),
            f"the partial output ends at line {resume_after[1]}, which the input does not have; it is not this input's",
        )


def annotate(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    input_format: Optional[str] = None,
    output_format: Optional[str] = None,
    batch_size: int = 64,
    n_process: int = 1,
    engine: Optional[str] = None,
    skip_bad_lines: bool = False,
    keep_entities: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> AnnotateSummary:
    """Tag every record of `input_path` with the pipeline and write them to `output_path`.

    model (Union[str, Path, Language]): a pipeline, or its directory or package name.
    input_path (Union[str, Path]): `.txt`, `.jsonl` or `.spacy` (a file or a directory of them).
    output_path (Union[str, Path]): `.jsonl`, `.html` or a `.spacy` directory of shards.
    n_process (int): processes for `nlp.pipe`.
    engine (Optional[str]): the component's inference engine for this run.
    skip_bad_lines (bool): skip (and count) bad records instead of stopping at the first.
    keep_entities (bool): DocBin input: keep the entities it holds.
    overwrite (bool): replace an existing output.
    resume (bool): continue an interrupted run from `OUTPUT.partial`.
    RETURNS (AnnotateSummary): what was read, written, skipped and renamed.
    Raises `InputError` for a bad record (unless `skip_bad_lines`), `OutputError`
    for an output that must not be written, and `Interrupted` on SIGINT/SIGTERM.
    """
    check_positive("batch_size", batch_size)
    check_positive("n_process", n_process)
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.exists():
        raise InputError(str(input_path), "no such file or directory")
    in_fmt = "spacy" if input_path.is_dir() else detect_format(input_path, INPUT_FORMATS, input_format, "input")
    out_fmt = detect_format(output_path, OUTPUT_FORMATS, output_format, "output")
    partial = partial_path(output_path)
    check_output(output_path, [input_path], overwrite=overwrite)
    check_output(partial, [input_path])
    if resume and out_fmt == "html":
        raise OutputError(f"{output_path}: --resume continues .jsonl and .spacy outputs, not HTML")
    if resume and not partial.exists():
        raise OutputError(f"{partial}: no interrupted run to resume (run without --resume)")
    if not resume and partial.exists():
        if not overwrite:
            raise OutputError(
                f"{partial}: left by an interrupted run; pass --resume to continue it or --overwrite to start again"
            )
        replace_with_nothing(partial)
    nlp = model if isinstance(model, Language) else load_for_annotation(model, engine=engine)
    summary = AnnotateSummary(partial=str(partial))
    writer = _Writer(partial, out_fmt, title=input_path.name, resume=resume)
    summary.resumed_after, summary.already_done = writer.last_key, writer.already_done
    fatal: List[BadRecord] = []
    with stop_on_signals() as stop, warnings.catch_warnings():
        # W127: worker processes exited non-zero, as they do when a signal stops them.
        warnings.filterwarnings("ignore", message=r"\[W127\]")
        items = read_items(input_path, in_fmt, nlp, summary, keep_entities)
        stream = _records_to_tag(items, summary, skip_bad_lines, writer.last_key, fatal)
        docs = nlp.pipe(stream, as_tuples=True, batch_size=batch_size, n_process=n_process)
        try:
            for doc, record in tqdm(docs, unit="doc", desc="annotate", disable=not progress, smoothing=0.1):
                if stop.requested:
                    break
                writer.write(record, doc)
                summary.docs_out += 1
                summary.entities.update(e.label_ for e in doc.ents)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            if not stop.requested:  # a worker died on its own
                raise
        finally:
            docs.close()
            writer.close()
    if stop.requested:
        summary.interrupted = stop.name
        raise Interrupted(summary, stop.exit_code)
    if fatal:
        bad = fatal[0]
        raise InputError(
            f"{input_path}:{bad.line}",
            f"{bad.reason}: {bad.detail} (the {summary.docs_out} docs before it are in "
            f"{partial}; fix the line and rerun with --resume, or pass --skip-bad-lines)",
        )
    replace(partial, output_path)
    summary.partial = None
    summary.outputs.append(str(output_path))
    return summary


def replace_with_nothing(path: Path) -> None:
    """Remove a file or directory left by an earlier run."""
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def load_for_annotation(
    model: Union[str, Path], *, engine: Optional[str] = None, n_threads: Optional[int] = None
) -> Language:
    """Load a pipeline (directory or package name); each `wnut_ner` component also writes entity
    scores for the output, and runs on `engine` with `n_threads` where given."""
    config = _pipeline_config(model)
    overrides: Dict[str, Any] = {}
    for name, component in config["components"].items():
        if component.get("factory") != "wnut_ner":
            continue
        if not component.get("spans_key"):
            overrides[f"components.{name}.spans_key"] = SCORES_KEY
        if engine is not None:
            overrides[f"components.{name}.engine"] = engine
        if n_threads is not None:
            overrides[f"components.{name}.n_threads"] = n_threads
    return load_pipeline(model, config=overrides)


def _pipeline_config(model: Union[str, Path]):
    """The saved config of a pipeline directory or installed package (checked by `load_pipeline` on load)."""
    path = Path(model)
    if not path.is_dir() and spacy.util.is_package(str(model)):
        path = spacy.util.get_package_path(str(model))
        path = next((p for p in path.iterdir() if (p / "config.cfg").is_file()), path)
    if not (path / "config.cfg").is_file():
        load_pipeline(model)  # raises the clear error
    return spacy.util.load_config(path / "config.cfg")


def print_summary(summary: AnnotateSummary) -> None:
    """Docs in/out, skipped lines by reason (with line numbers), blank lines, renamed fields, entities."""
    if summary.resumed_after is not None:
        source, line = summary.resumed_after
        print(f"resumed after {source}:{line} ({summary.already_done} docs were already written)")
    print(f"docs in: {summary.docs_in}, docs out: {summary.docs_out}")
    for reason, count in summary.skipped.items():
        lines = ", ".join(map(str, summary.skipped_lines[reason]))
        more = " ..." if count > len(summary.skipped_lines[reason]) else ""
        print(f"skipped {count} line(s), {reason}: line {lines}{more}")
    if summary.blank_lines:
        listed = ", ".join(map(str, summary.blank_lines[:_LISTED]))
        more = " ..." if len(summary.blank_lines) > _LISTED else ""
        print(f"blank lines (no doc): {len(summary.blank_lines)}: line {listed}{more}")
    for name, count in summary.renamed_fields.items():
        print(f"input field {name!r} renamed to 'input_{name}' in {count} record(s) (it is an output field)")
    if summary.entities:
        print("entities: " + ", ".join(f"{label} {n}" for label, n in summary.entities.most_common()))
    for output in summary.outputs:
        print(f"wrote {output}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: entities</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}</style>
</head><body><h1>{title}: entities</h1>
"""
