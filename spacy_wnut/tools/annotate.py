"""Tag a stream of texts with a trained pipeline: plain text, JSONL or DocBin in; JSONL, DocBin or HTML out.

Everything streams: input is read line by line (or DocBin by DocBin), docs go
through `nlp.pipe` in batches (optionally in several processes) and are written
as they come out, so memory does not grow with the input.

Guarantees:
- Output goes to `OUTPUT.partial` and is renamed to `OUTPUT` only when the run
  is complete, so an earlier result is never destroyed or half replaced; an
  existing output is replaced only with `overwrite`, and the input can never
  be the output. The partial is locked while a run writes it and records what
  it is made from (`data/partials.py`). A stream (`-` for stdout, a FIFO, a
  device) is written to directly; a link is followed.
- Every record carries its key (`source`, `line`). A bad record (undecodable
  bytes, invalid JSON, no string `text`, text that is not valid Unicode, text
  over `nlp.max_length`) stops the run with its file and line, after
  everything read before it is tagged and written; with `skip_bad_lines` it is
  skipped, counted by reason and listed. Blank lines are counted. Input fields
  named like output fields are renamed (`entities` -> `input_entities`) and
  counted. Nothing is dropped silently.
- Ctrl-C or SIGTERM stops the run (and its worker processes) within seconds;
  `OUTPUT.partial` then holds every record tagged so far, complete, and a
  rerun with `resume` continues after the last of them, with no duplicate and
  no gap, once it has checked that the input, the pipeline and the options are
  those the partial was made with. A full disk keeps the partial the same way.
"""

import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
from confection import ConfigValidationError
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from ..data.convert import docbin_files, read_docbin
from ..data.outputs import DIRECTORY, FILE, atomic_path, check_output, full_disk_error, is_stream, open_stream
from ..data.partials import Partial, claim, partial_path, pipeline_identity
from ..data.records import BadRecord, Item, Record, check_length, json_line, output_row, read_text_file
from ..errors import ConfigError, InputError, OutputError, UserError, describe_config_error
from ..pipeline.component import load_pipeline
from .stopping import stop_on_signals

INPUT_FORMATS = ("txt", "jsonl", "spacy")
OUTPUT_FORMATS = ("jsonl", "spacy", "html")
SCORES_KEY = "wnut_ner_annotate"
SHARD_SIZE = 10_000
# DocBin output: each doc's key, in `doc.user_data`.
KEY_SOURCE, KEY_LINE = "spacy_wnut.source", "spacy_wnut.line"
_LISTED = 20  # line numbers listed in the summary, per reason

__all__ = ["annotate", "AnnotateSummary", "Interrupted", "partial_path", "load_for_annotation"]


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
    listed: int = _LISTED

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        listed = self.skipped_lines.setdefault(reason, [])
        if len(listed) < _LISTED:
            listed.append(line)


class Interrupted(UserError):
    """The run was stopped by a signal; the summary says what was written and where."""

    def __init__(self, summary: AnnotateSummary, exit_code: int, output: Optional[Path] = None) -> None:
        self.summary = summary
        self.exit_code = exit_code
        if summary.partial is None:
            where = f"they were written to the stream {output} (--resume does not apply to a stream)"
        else:
            where = f"{summary.partial} holds them, complete: rerun with --resume to continue"
        super().__init__(f"interrupted by {summary.interrupted} after {summary.docs_out} docs; {where}")


def detect_format(path: Path, allowed: Tuple[str, ...], given: Optional[str] = None, role: str = "input") -> str:
    """The format named, else the file's suffix (.txt, .jsonl, .spacy, .html); JSONL for a stream without one."""
    fmt = (given or path.suffix.lstrip(".")).lower()
    fmt = {"json": "jsonl", "htm": "html", "text": "txt"}.get(fmt, fmt)
    if not fmt and role == "output" and is_stream(path):
        fmt = "jsonl"
    error = (lambda problem: InputError(str(path), problem)) if role == "input" else _output_error(path)
    if not fmt:
        raise error(f"cannot tell the {role} format (no suffix); name it with --{role}-format, one of {allowed}")
    if fmt not in allowed:
        raise error(f"{fmt!r} is not a supported {role} format; use one of {allowed}")
    return fmt


def _output_error(path: Path):
    return lambda problem: OutputError(f"{path}: {problem}")


def check_positive(name: str, value: int) -> None:
    """Refuse a count that must be at least 1 (batch sizes, process counts)."""
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")


def read_items(
    input_path: Path, fmt: str, nlp: Language, summary: AnnotateSummary, keep_entities: bool
) -> Iterator[Item]:
    """Every input record in order, bad ones included (as `BadRecord`)."""
    if fmt == "spacy":
        yield from read_docbin_records(input_path, nlp, keep_entities)
        return
    for item in read_text_file(input_path, fmt, input_path.name, summary.blank_lines):
        if isinstance(item, Record):
            item = check_length(item, nlp.max_length) or item
        yield item


def read_docbin_records(path: Path, nlp: Language, keep_entities: bool) -> Iterator[Record]:
    """The docs of a DocBin file or directory as records (tokens kept; entities cleared unless `keep_entities`)."""
    for file in docbin_files(path):
        source = file.name if file == path else str(file.relative_to(path))
        for number, doc in enumerate(read_docbin(file, nlp.vocab), start=1):
            if not keep_entities:
                doc.set_ents([], default="missing")
            doc.user_data.pop(KEY_SOURCE, None)
            doc.user_data.pop(KEY_LINE, None)
            yield Record(source, number, doc.text, doc=doc)


def written_records(path: Path, fmt: str) -> Iterator[Tuple[Tuple[str, int], str]]:
    """(key, text) of the complete records of a partial output, in order (a half-written last line is left out)."""
    if fmt == "spacy":
        from spacy.vocab import Vocab

        for shard in sorted(path.glob("[0-9]" * 5 + ".spacy")):
            for doc in DocBin().from_disk(shard).get_docs(Vocab()):
                yield (doc.user_data[KEY_SOURCE], int(doc.user_data[KEY_LINE])), doc.text
        return
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.endswith(b"\n"):
                return
            try:
                row = json.loads(line)
                yield (row["source"], int(row["line"])), row["text"]
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path}:{number}", "not a record this command wrote; cannot resume from it") from None


class _Writer:
    """Writes tagged records in one format, as they come: to the partial output, or straight to a stream."""

    def __init__(self, path: Path, fmt: str, title: str, resume: bool, stream: bool = False) -> None:
        self.path, self.fmt = path, fmt
        self.last_key: Optional[Tuple[str, int]] = None
        self.already_done = 0
        self.shard: Optional[DocBin] = None
        self.n_shards = 0
        self.file = None
        if fmt == "spacy":
            if resume:
                self._resume_shards()
        elif stream:
            self.file = open_stream(path, "w")
        elif fmt == "jsonl" and resume:
            self._resume_jsonl()
            self.file = path.open("a", encoding="utf-8")
        else:
            self.file = path.open("w", encoding="utf-8")
        if fmt == "html":
            self.file.write(_HTML_HEAD.format(title=_escape(title)))

    def _resume_jsonl(self) -> None:
        """Keep the complete records of an interrupted run (a half-written last line is cut off)."""
        self._count_written("jsonl")
        _cut_half_line(self.path)

    def _resume_shards(self) -> None:
        self.n_shards = len(list(self.path.glob("[0-9]" * 5 + ".spacy")))
        self._count_written("spacy")

    def _count_written(self, fmt: str) -> None:
        for key, _ in written_records(self.path, fmt):
            self.last_key = key
            self.already_done += 1

    def write(self, record: Record, doc: Doc) -> None:
        if self.fmt == "jsonl":
            self.file.write(json_line(output_row(record, doc, SCORES_KEY)))
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

    def close(self, complete: bool = True) -> None:
        """Flush and close; the HTML page is ended only when the run is `complete`."""
        if self.file is None:
            self.flush()
            return
        file, self.file = self.file, None
        try:
            if complete and self.fmt == "html":
                file.write("</body></html>\n")
            file.flush()
        finally:
            try:
                file.close()
            except OSError:
                pass


def _cut_half_line(path: Path, block: int = 1 << 16) -> None:
    """Cut a file after its last newline (the end of its last complete record), reading from its end."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        end, keep = size, 0
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            found = f.read(end - start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
            end = start
        if keep < size:
            f.truncate(keep)


def _records_to_tag(
    items: Iterable[Item],
    summary: AnnotateSummary,
    skip_bad_lines: bool,
    fatal: List[BadRecord],
    written: Optional[Iterator[Tuple[Tuple[str, int], str]]] = None,
    input_path: Optional[Path] = None,
) -> Iterator[Tuple[Union[str, Doc], Record]]:
    """(text or doc, record) for `nlp.pipe`; a fatal bad record ends the stream (kept in `fatal`).

    written: the records a resumed partial holds: the input's first records are
    checked against them, one by one, and not tagged again.
    """
    done = next(written, None) if written is not None else None
    for item in items:
        if done is not None:
            if isinstance(item, Record):
                _check_resumed(item, done, input_path)
                done = next(written, None)
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
    if done is not None:
        (source, line), _ = done
        raise InputError(
            str(input_path),
            f"the partial output holds a record for {source}:{line}, which this input does not have: "
            "the partial was made from another input; pass --overwrite instead of --resume to start again",
        )


def _check_resumed(item: Record, done: Tuple[Tuple[str, int], str], input_path: Optional[Path]) -> None:
    key, text = done
    if item.key != key or item.text != text:
        raise InputError(
            f"{input_path}:{item.line}",
            f"differs from the record the partial output holds for {key[0]}:{key[1]} (another input, or an "
            "edited one); pass --overwrite instead of --resume to start again",
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
    min_score: Optional[float] = None,
    skip_bad_lines: bool = False,
    keep_entities: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> AnnotateSummary:
    """Tag every record of `input_path` with the pipeline and write them to `output_path`.

    model (Union[str, Path, Language]): a pipeline, or its directory or package name.
    input_path (Union[str, Path]): `.txt`, `.jsonl` or `.spacy` (a file or a directory of them).
    output_path (Union[str, Path]): `.jsonl`, `.html` or a `.spacy` directory of shards; or a stream
        (`-` for stdout, a FIFO, a device), written to directly (JSONL unless the format is named).
    n_process (int): processes for `nlp.pipe`.
    engine (Optional[str]): the component's inference engine for this run.
    min_score (Optional[float]): drop entities whose probability is below it (the component's
        `min_score` for this run; None keeps the pipeline's setting).
    skip_bad_lines (bool): skip (and count) bad records instead of stopping at the first.
    keep_entities (bool): DocBin input: keep the entities it holds.
    overwrite (bool): replace an existing output (and a partial one left by a stopped run).
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
    kind = DIRECTORY if out_fmt == "spacy" else FILE
    stream = is_stream(output_path)
    check_output(output_path, [input_path], overwrite=overwrite, kind=kind)
    if resume and stream:
        raise OutputError(f"{output_path}: is a stream; --resume continues a partial output file, which it has none of")
    if resume and out_fmt == "html":
        raise OutputError(f"{output_path}: --resume continues .jsonl and .spacy outputs, not HTML")
    made_from = {
        "input": str(input_path.resolve()),
        **(pipeline_identity(model) if not isinstance(model, Language) else _identity_of(model)),
        "input_format": in_fmt,
        "output_format": out_fmt,
        "keep_entities": keep_entities,
        "engine": engine,
        "min_score": min_score,
    }
    partial = None if stream else claim(output_path, kind=kind, inputs=[input_path], resume=resume, overwrite=overwrite)
    try:
        try:
            if partial is not None and partial.resumed:
                partial.check_made_from(made_from)
            nlp = (
                model if isinstance(model, Language) else load_for_annotation(model, engine=engine, min_score=min_score)
            )
            if partial is not None:
                partial.write_info(made_from)
        except BaseException:
            if partial is not None and not partial.resumed:
                partial.discard()  # this run made it and wrote nothing to it
            raise
        return _run(
            nlp,
            input_path,
            output_path,
            partial,
            in_fmt,
            out_fmt,
            batch_size,
            n_process,
            skip_bad_lines,
            keep_entities,
            progress,
        )
    finally:
        if partial is not None:
            partial.release()


def _identity_of(nlp: Language) -> Dict[str, Any]:
    import hashlib

    meta = nlp.meta
    config = hashlib.sha256(nlp.config.to_str().encode("utf-8")).hexdigest()[:16]
    return {
        "pipeline": "(a Language object)",
        "pipeline_meta": f"{meta.get('lang')}_{meta.get('name')} {meta.get('version')}",
        "pipeline_config": config,
    }


def _run(
    nlp: Language,
    input_path: Path,
    output_path: Path,
    partial: Optional[Partial],
    in_fmt: str,
    out_fmt: str,
    batch_size: int,
    n_process: int,
    skip_bad_lines: bool,
    keep_entities: bool,
    progress: bool,
) -> AnnotateSummary:
    resume = partial is not None and partial.resumed
    target = partial.path if partial is not None else output_path
    summary = AnnotateSummary(partial=str(target) if partial is not None else None)
    fatal: List[BadRecord] = []
    with _full_disk_named(output_path, partial, summary):
        writer = _Writer(target, out_fmt, title=input_path.name, resume=resume, stream=partial is None)
        summary.resumed_after, summary.already_done = writer.last_key, writer.already_done
        written = written_records(target, out_fmt) if resume else None
        with stop_on_signals() as stop, warnings.catch_warnings():
            # W127: worker processes exited non-zero, as they do when a signal stops them.
            warnings.filterwarnings("ignore", message=r"\[W127\]")
            items = read_items(input_path, in_fmt, nlp, summary, keep_entities)
            stream = _records_to_tag(items, summary, skip_bad_lines, fatal, written, input_path)
            docs = nlp.pipe(stream, as_tuples=True, batch_size=batch_size, n_process=n_process)
            complete = False
            try:
                for doc, record in tqdm(docs, unit="doc", desc="annotate", disable=not progress, smoothing=0.1):
                    if stop.requested:
                        break
                    writer.write(record, doc)
                    summary.docs_out += 1
                    summary.entities.update(e.label_ for e in doc.ents)
                complete = not stop.requested and not fatal
            except BrokenPipeError:
                if partial is None and not stop.requested:  # the stream's reader went away
                    raise OutputError(
                        f"{output_path}: the stream was closed by its reader after {summary.docs_out} docs"
                    ) from None
                if not stop.requested:
                    raise
            except (EOFError, OSError):
                # A worker stopped by the signal may die mid-message: the pipe then ends early
                # ("got end of file during message"). Without a stop, a worker died on its own.
                if not stop.requested:
                    raise
            finally:
                docs.close()
                writer.close(complete)
    if stop.requested:
        summary.interrupted = stop.name
        raise Interrupted(summary, stop.exit_code, output_path)
    if fatal:
        bad = fatal[0]
        where = f"in {partial.path}; fix the line and rerun with --resume" if partial else f"written to {output_path}"
        raise InputError(
            f"{input_path}:{bad.line}",
            f"{bad.reason}: {bad.detail} (the {summary.docs_out} docs before it are {where}, or pass --skip-bad-lines)",
        )
    if partial is not None:
        partial.finish(output_path)
    summary.partial = None
    summary.outputs.append(str(output_path))
    return summary


class _full_disk_named:
    """Turn a full disk or a file-size limit while writing into an `OutputError` that names the output
    and says that the partial output is kept, with what, and how to continue."""

    def __init__(self, output: Path, partial: Optional[Partial], summary: AnnotateSummary) -> None:
        self.output, self.partial, self.summary = output, partial, summary

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, traceback) -> bool:
        if not isinstance(err, OSError):
            return False
        done = self.summary.already_done + self.summary.docs_out
        if self.partial is not None:
            kept = (
                f"{self.partial.path} is kept with the {done} docs written before it: free some space (or raise "
                "the limit) and rerun with --resume to continue"
            )
        else:
            kept = f"{done} docs were written to it"
        full = full_disk_error(err, self.partial.path if self.partial is not None else self.output, kept)
        if full is None:
            return False
        raise full from None


def load_for_annotation(
    model: Union[str, Path],
    *,
    engine: Optional[str] = None,
    n_threads: Optional[int] = None,
    min_score: Optional[float] = None,
) -> Language:
    """Load a pipeline (directory or package name); each `wnut_ner` component also writes entity
    scores for the output, and runs on `engine` with `n_threads`, dropping entities below `min_score`,
    where given."""
    check_min_score(min_score)
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
        if min_score is not None:
            overrides[f"components.{name}.min_score"] = float(min_score)
    return load_pipeline(model, config=overrides)


def check_min_score(min_score: Optional[float]) -> None:
    """Refuse a `--min-score` that is not a probability."""
    if min_score is not None and not (isinstance(min_score, (int, float)) and 0.0 <= min_score <= 1.0):
        raise ConfigError(f"--min-score must be a probability in [0, 1], got {min_score!r}")


def _pipeline_config(model: Union[str, Path]):
    """The saved config of a pipeline directory or installed package (checked by `load_pipeline` on load)."""
    path = Path(model)
    if not path.is_dir() and spacy.util.is_package(str(model)):
        path = spacy.util.get_package_path(str(model))
        path = next((p for p in path.iterdir() if (p / "config.cfg").is_file()), path)
    if not (path / "config.cfg").is_file():
        load_pipeline(model)  # raises the clear error
    try:
        return spacy.util.load_config(path / "config.cfg")
    except ConfigValidationError as err:
        raise InputError(
            str(path / "config.cfg"), f"not a valid pipeline config: {describe_config_error(err)}"
        ) from None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: entities</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}</style>
</head><body><h1>{title}: entities</h1>
"""
