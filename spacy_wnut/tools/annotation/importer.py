"""`import-tasks`: an annotation tool's export back into a DocBin that `spacy train` reads.

Each tool's reader (`label_studio`, `doccano`, `prodigy`) gives located tasks;
this module makes docs of them and checks what the tools cannot:

- the text is tokenized by the pipeline's tokenizer (`model`), else a blank
  `lang` pipeline's; Prodigy's own tokens are kept as its tasks give them;
- a span off token boundaries is snapped outwards to the tokens it touches
  (`doc.char_span(alignment_mode="expand")`) and counted; `strict` refuses it;
  a span that covers no token (only whitespace) is an error;
- of overlapping spans the longest is kept (ties: the first), the others are
  counted; `strict` refuses them;
- a label the pipeline (or `labels`) does not know is an error;
- several tasks with one key (`source`, `line`): the latest wins (time stamp,
  then place in the file) and the others are counted; `strict` refuses them;
  tasks of one key with different texts are an error;
- a task without a key is kept under its place in the export, counted.

Every doc holds all of its text's entities (other tokens are `O`) and its key
in `doc.user_data`, as `annotate` writes DocBins.
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.util import filter_spans

from ...data.outputs import atomic_path, check_output
from ...data.records import check_unicode
from ...errors import ConfigError, InputError
from ...pipeline.component import find_wnut_pipe, load_pipeline
from ..annotate import KEY_LINE, KEY_SOURCE
from . import doccano, label_studio, prodigy
from .tasks import ImportReport, ReadSpan, ReadTask

FORMATS = {module.NAME: module for module in (label_studio, doccano, prodigy)}
SNAPPED = "span off token boundaries snapped to the tokens it touches"
OVERLAP = "overlapping span dropped (the longest kept)"
DUPLICATE = "key seen in several tasks: the latest kept, this one dropped"
NO_KEY = "no key (source, line): kept under its place in the export"


@dataclass
class ImportSummary:
    """What `import-tasks` read, wrote, skipped and repaired."""

    source: str
    output: str
    format: str
    tasks: int = 0
    docs: int = 0
    tokens: int = 0
    entities: Counter = field(default_factory=Counter)
    report: ImportReport = field(default_factory=ImportReport)


def check_format(name: str) -> None:
    """Refuse a tool name `--format` does not know."""
    if name not in FORMATS:
        raise ConfigError(f"--format must be one of {tuple(FORMATS)}, got {name!r}")


def import_tasks(
    export: Union[str, Path],
    output: Union[str, Path],
    *,
    format: str,
    model: Union[None, str, Path, Language] = None,
    labels: Optional[Sequence[str]] = None,
    lang: str = "en",
    strict: bool = False,
    use_predictions: bool = False,
    overwrite: bool = False,
) -> ImportSummary:
    """Read a tool's export and write its annotations as a `.spacy` DocBin.

    export (Union[str, Path]): the tool's export file.
    output (Union[str, Path]): the DocBin to write (replaced only with `overwrite`).
    format (str): "label-studio", "doccano" or "prodigy".
    model (Union[None, str, Path, Language]): the pipeline whose tokenizer and labels to use.
    labels (Optional[Sequence[str]]): the labels allowed (default: the model's, else any).
    lang (str): the blank pipeline's language when no `model` is given.
    strict (bool): refuse spans off token boundaries, overlapping spans and repeated keys.
    use_predictions (bool): take the model's predictions for tasks nobody annotated.
    RETURNS (ImportSummary): counts, and every skip and repair with its place.
    """
    check_format(format)
    export, output = Path(export), Path(output)
    if not export.is_file():
        raise InputError(str(export), "no such file" if not export.exists() else "not a file")
    check_output(output, [export], overwrite=overwrite)
    nlp, known = _tokenizer_and_labels(model, labels, lang)
    summary = ImportSummary(str(export), str(output), format)
    report = summary.report
    read = list(FORMATS[format].read(export, report, use_predictions=use_predictions))
    summary.tasks = len(read) + sum(report.skipped.values())
    docbin = DocBin(store_user_data=True)
    for task in _latest_per_key(read, report, strict):
        doc = make_doc(nlp, task, known, report, strict)
        doc.user_data[KEY_SOURCE], doc.user_data[KEY_LINE] = task.key or (export.name, task.order[-1])
        docbin.add(doc)
        summary.docs += 1
        summary.tokens += len(doc)
        summary.entities.update(e.label_ for e in doc.ents)
    with atomic_path(output) as tmp:
        docbin.to_disk(tmp)
    return summary


def _tokenizer_and_labels(
    model: Union[None, str, Path, Language], labels: Optional[Sequence[str]], lang: str
) -> Tuple[Language, Optional[Tuple[str, ...]]]:
    if model is None:
        return spacy.blank(lang), tuple(labels) if labels else None
    nlp = model if isinstance(model, Language) else load_pipeline(model)
    _, pipe = find_wnut_pipe(nlp)
    return nlp, tuple(labels) if labels else pipe.labels


def _latest_per_key(tasks: List[ReadTask], report: ImportReport, strict: bool) -> List[ReadTask]:
    """One task per key, the latest; in the order the keys first appear."""
    groups: Dict[Tuple[str, int], List[ReadTask]] = {}
    kept: List[ReadTask] = []
    for task in tasks:
        if task.key is None:
            report.repair(NO_KEY, task.where)
            kept.append(task)
            continue
        if task.key not in groups:
            kept.append(task)
        groups.setdefault(task.key, []).append(task)
    winners = {}
    for key, group in groups.items():
        first = group[0]
        for other in group[1:]:
            if other.text != first.text:
                raise InputError(
                    other.where, f"has the key {key} of {first.where}, but not its text: the key is not this text's"
                )
        winner = max(group, key=lambda t: t.order)
        for loser in group:
            if loser is not winner:
                if strict:
                    raise InputError(loser.where, f"the key {key} is also {winner.where}'s (--strict)")
                report.repair(DUPLICATE, loser.where)
        winners[key] = winner
    return [winners[task.key] if task.key is not None else task for task in kept]


def make_doc(
    nlp: Language, task: ReadTask, labels: Optional[Tuple[str, ...]], report: ImportReport, strict: bool = False
) -> Doc:
    """The doc of one task: its tokens (the tool's, else the tokenizer's) and its spans as `doc.ents`.

    nlp (Language): gives the tokenizer and the vocab.
    task (ReadTask): the task.
    labels (Optional[Tuple[str, ...]]): the labels allowed, None for any.
    report (ImportReport): counts the repairs.
    strict (bool): refuse repairs instead.
    RETURNS (Doc): the doc, every token outside an entity `O`.
    """
    problem = check_unicode(task.text)
    if problem:
        raise InputError(task.where, problem)
    doc = _doc_of_tokens(nlp, task) if task.tokens is not None else nlp.make_doc(task.text)
    spans = [_entity(doc, span, labels, report, strict) for span in task.spans]
    kept = filter_spans(spans)
    if len(kept) < len(spans):
        kept_set = {(s.start, s.end, s.label_) for s in kept}
        for span, read in zip(spans, task.spans):
            if (span.start, span.end, span.label_) in kept_set:
                kept_set.discard((span.start, span.end, span.label_))
                continue
            if strict:
                raise InputError(read.where, f"{span.text!r} ({span.label_}) overlaps another span (--strict)")
            report.repair(OVERLAP, f"{read.where} {span.text!r} ({span.label_})")
    doc.set_ents(kept, default="outside")
    return doc


def _entity(doc: Doc, span: ReadSpan, labels: Optional[Tuple[str, ...]], report: ImportReport, strict: bool) -> Span:
    if labels is not None and span.label not in labels:
        raise InputError(span.where, f"label {span.label!r} is not one the pipeline knows ({', '.join(labels)})")
    exact = doc.char_span(span.start, span.end, label=span.label)
    if exact is not None:
        return exact
    snapped = doc.char_span(span.start, span.end, label=span.label, alignment_mode="expand")
    text = doc.text[span.start : span.end]
    if snapped is None or len(snapped) == 0:
        raise InputError(span.where, f"span {text!r} at [{span.start}, {span.end}) covers no token")
    if strict:
        raise InputError(
            span.where,
            f"span {text!r} at [{span.start}, {span.end}) is not on token boundaries (the tokens are "
            f"{snapped.text!r}; --strict)",
        )
    report.repair(SNAPPED, f"{span.where} {text!r} -> {snapped.text!r}")
    return snapped


def _doc_of_tokens(nlp: Language, task: ReadTask) -> Doc:
    """A doc of the tool's tokens; whitespace between them becomes spaCy's (a space, or whitespace tokens)."""
    text = task.text
    words: List[str] = []
    spaces: List[bool] = []

    def add_gap(gap: str) -> None:
        if not gap:
            return
        if gap.strip():
            raise InputError(task.where, f"the tokens leave {gap!r} of the text out")
        if words and not spaces[-1] and gap.startswith(" "):
            spaces[-1], gap = True, gap[1:]
        if gap:
            words.append(gap)
            spaces.append(False)

    position = 0
    for start, end in task.tokens:
        add_gap(text[position:start])
        words.append(text[start:end])
        spaces.append(False)
        position = end
    add_gap(text[position:])
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    if doc.text != text:  # a bug, not bad input: every character was placed above
        raise AssertionError(f"{task.where}: the doc of the tokens reads {doc.text!r}, not {text!r}")
    return doc
