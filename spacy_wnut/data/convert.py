"""Convert WNUT-style CoNLL files and Hugging Face token-classification datasets to `DocBin`.

Docs carry `doc.ents` and sentence boundaries; each doc holds `n_sents`
sentences. Nothing is dropped: a `ConversionSummary` counts sentences, tokens,
entities per type and every repair made while reading.
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union

from spacy.tokens import Doc, DocBin
from spacy.training.iob_utils import biluo_to_iob, doc_to_biluo_tags
from spacy.vocab import Vocab
from tqdm import tqdm

from ..errors import ConfigError, InputError, require
from .conll import DOCSTART, WNUT17_LABELS, ReadReport, Repair, Sentence, check_tags, clean_word, read_conll
from .outputs import FILE, atomic_path, check_output


@dataclass
class ConversionSummary:
    """What one conversion wrote, and what it repaired on the way."""

    source: str
    output: str
    docs: int = 0
    sentences: int = 0
    tokens: int = 0
    entities: Counter = field(default_factory=Counter)
    tab_separators: int = 0
    byte_order_mark: bool = False
    docstarts: int = 0
    repairs: List[Repair] = field(default_factory=list)


def sentences_to_docs(sentences: Iterable[Sentence], vocab: Vocab, n_sents: int = 1) -> Iterator[Doc]:
    """Group sentences into docs of `n_sents` sentences, with ents and sentence starts."""
    if n_sents < 1:
        raise ConfigError(f"n_sents must be at least 1, got {n_sents}")
    group: List[Sentence] = []
    for sentence in sentences:
        group.append(sentence)
        if len(group) == n_sents:
            yield _group_to_doc(group, vocab)
            group = []
    if group:
        yield _group_to_doc(group, vocab)


def _group_to_doc(group: List[Sentence], vocab: Vocab) -> Doc:
    words: List[str] = []
    tags: List[str] = []
    sent_starts: List[bool] = []
    for sentence in group:
        words.extend(sentence.words)
        tags.extend(sentence.tags)
        sent_starts.extend([True] + [False] * (len(sentence.words) - 1))
    spaces = [True] * (len(words) - 1) + [False]
    return Doc(vocab, words=words, spaces=spaces, ents=tags, sent_starts=sent_starts)


# What a corpus DocBin keeps of a doc: words, gold entities, sentence starts.
CORPUS_ATTRS = ["ORTH", "ENT_IOB", "ENT_TYPE", "SENT_START"]


def doc_to_iob(doc: Doc) -> List[str]:
    """The IOB2 tags of `doc.ents`, one per token."""
    return biluo_to_iob(doc_to_biluo_tags(doc, missing="O"))


def write_docbin(
    sentences: Iterable[Sentence],
    output: Union[str, Path],
    summary: ConversionSummary,
    *,
    n_sents: int = 1,
    progress: bool = False,
    total: Optional[int] = None,
) -> ConversionSummary:
    """Write sentences as a `DocBin` to `output`, counting into `summary`."""
    vocab = Vocab()
    docbin = DocBin(attrs=CORPUS_ATTRS, store_user_data=False)
    bar = tqdm(sentences, total=total, unit="sent", desc=summary.source, disable=not progress)
    for doc in sentences_to_docs(bar, vocab, n_sents=n_sents):
        docbin.add(doc)
        summary.docs += 1
        summary.entities.update(ent.label_ for ent in doc.ents)
    with atomic_path(output) as tmp:
        docbin.to_disk(tmp)
    return summary


def docbin_files(path: Union[str, Path]) -> List[Path]:
    """The DocBin files at `path`: the file itself, or every `.spacy` file under a directory.

    Sorted; hidden names (work in progress of an interrupted run) are left out.
    Raises `InputError` for a missing path or a directory with no `.spacy` file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "no such file or directory")
    if not path.is_dir():
        return [path]
    files = sorted(
        file
        for file in path.rglob("*.spacy")
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not files:
        raise InputError(str(path), "directory holds no .spacy files")
    return files


def read_docbin(file: Union[str, Path], vocab: Vocab) -> List[Doc]:
    """The docs of one DocBin file; `InputError` naming the file for one spaCy cannot read."""
    try:
        return list(DocBin().from_disk(file).get_docs(vocab))
    except Exception as err:  # msgpack, zlib or spaCy's own errors: all mean "not a DocBin"
        raise InputError(str(file), f"not a readable spaCy DocBin ({type(err).__name__}: {err})") from None


def convert_conll(
    input_path: Union[str, Path],
    output: Union[str, Path],
    *,
    n_sents: int = 1,
    labels: Optional[Sequence[str]] = WNUT17_LABELS,
    strict: bool = False,
    progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert one WNUT-style CoNLL file to a `.spacy` DocBin.

    labels: allowed entity types (WNUT 17's by default), None for any.
    strict: make repairs (`I-` starts, NUL characters in tokens) errors.
    overwrite: replace an existing output file.
    """
    if not Path(input_path).is_file():
        raise InputError(str(input_path), "no such file" if not Path(input_path).exists() else "not a file")
    check_output(output, [input_path], overwrite=overwrite, kind=FILE)
    report = ReadReport()
    sentences = read_conll(input_path, labels=labels, strict=strict, report=report)
    summary = ConversionSummary(source=str(input_path), output=str(output))
    write_docbin(sentences, output, summary, n_sents=n_sents, progress=progress)
    summary.sentences = report.sentences
    summary.tokens = report.tokens
    summary.tab_separators = report.tab_separators
    summary.byte_order_mark = report.byte_order_mark
    summary.docstarts = report.docstarts
    summary.repairs = report.repairs
    return summary


def hf_sentences(
    dataset,
    name: str,
    *,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
    labels: Optional[Sequence[str]] = None,
    strict: bool = False,
    report: Optional[ReadReport] = None,
) -> Iterator[Sentence]:
    """Yield validated sentences from a HF `Dataset` with `tokens` and `ClassLabel` tags.

    name: how errors name the dataset (e.g. the split), as `name row N`.
    """
    report = report if report is not None else ReadReport()
    for column in (tokens_column, tags_column):
        if column not in dataset.column_names:
            raise InputError(name, f"no column {column!r}; columns are {dataset.column_names}")
    feature = getattr(dataset.features[tags_column], "feature", None)
    names = getattr(feature, "names", None)
    if names is None:
        raise InputError(name, f"column {tags_column!r} is not a sequence of ClassLabel")
    for row, record in enumerate(dataset):
        where = f"{name} row {row}"
        words, tag_ids = record[tokens_column], record[tags_column]
        if list(words) == [DOCSTART]:
            report.docstarts += 1
            continue
        if len(words) != len(tag_ids):
            raise InputError(where, f"{len(words)} tokens but {len(tag_ids)} tags")
        if not words:
            if strict:
                raise InputError(where, "empty sentence (strict mode: no repairs)")
            # An empty row is kept out of the output but counted and reported.
            report.repairs.append(Repair(where, "empty sentence skipped", "", ""))
            continue
        wheres = [f"{where} token {i}" for i in range(len(words))]
        words = [clean_word(word, w, strict=strict, report=report) for word, w in zip(words, wheres)]
        tags = [names[tag_id] for tag_id in tag_ids]
        fixed = check_tags(tags, wheres, labels=labels, strict=strict, report=report)
        report.sentences += 1
        report.tokens += len(words)
        yield Sentence(list(words), fixed, where)


def convert_hf_dataset(
    dataset,
    output: Union[str, Path],
    *,
    n_sents: int = 1,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
    labels: Optional[Sequence[str]] = None,
    strict: bool = False,
    progress: bool = False,
    overwrite: bool = False,
) -> Dict[str, ConversionSummary]:
    """Convert a HF `Dataset` (to the file `output`) or `DatasetDict` (to `output/<split>.spacy`).

    Returns one summary per split ("data" for a plain `Dataset`).
    overwrite: replace existing output files.
    """
    require("convert-hf", ["datasets"], "train")
    if hasattr(dataset, "column_names") and not isinstance(dataset.column_names, dict):
        splits = {"data": (dataset, Path(output))}
    else:
        splits = {split: (ds, Path(output) / f"{split}.spacy") for split, ds in dataset.items()}
    for _, path in splits.values():
        check_output(path, overwrite=overwrite, kind=FILE)
    summaries = {}
    for split, (ds, path) in splits.items():
        report = ReadReport()
        sentences = hf_sentences(
            ds,
            split,
            tokens_column=tokens_column,
            tags_column=tags_column,
            labels=labels,
            strict=strict,
            report=report,
        )
        summary = ConversionSummary(source=split, output=str(path))
        write_docbin(sentences, path, summary, n_sents=n_sents, progress=progress, total=len(ds))
        summary.sentences, summary.tokens = report.sentences, report.tokens
        summary.docstarts, summary.repairs = report.docstarts, report.repairs
        summaries[split] = summary
    return summaries
