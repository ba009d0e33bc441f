"""A pipeline's predictions for annotation tasks: entities with scores and the text's uncertainty.

The pipeline runs as `nlp.pipe` would run it, component by component, except
that the `wnut_ner` component's step also keeps the token probabilities it
decodes from, so the uncertainty (`selection.py`, from the same tag-sequence
distribution as the entity probabilities) costs no second forward pass and the
entities are exactly the ones the component sets.
"""

from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from ...data.records import Record, entity_rows
from ...ml.encoding import doc_lengths
from ...pipeline.component import SubwordNER, find_wnut_pipe
from .selection import text_uncertainty, token_margins

# Where the entity scores go while predicting, when the component writes none of its own.
SCORES_KEY = "wnut_ner_annotate"


@dataclass
class Prediction:
    """One input record as predicted: its key, text, tokens, entities with scores, uncertainty."""

    source: str
    line: int
    text: str
    tokens: List[Tuple[int, int, str, bool]]  # (start, end, text, followed by whitespace)
    entities: List[Dict[str, Any]]  # start, end, label, text, score (as `annotate` writes them)
    uncertainty: float
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Tuple[str, int]:
        return (self.source, self.line)

    @property
    def confidence(self) -> float:
        """One minus the uncertainty: the lowest token margin."""
        return 1.0 - self.uncertainty


def prediction_of(record: Record, doc: Doc, uncertainty: float, scores_key: Optional[str]) -> Prediction:
    """The prediction of a tagged doc (entity scores read from `doc.spans[scores_key]`)."""
    tokens = [(t.idx, t.idx + len(t.text), t.text, bool(t.whitespace_)) for t in doc]
    return Prediction(
        record.source, record.line, doc.text, tokens, entity_rows(doc, scores_key), uncertainty, dict(record.meta)
    )


@contextmanager
def _scores_written(pipe: SubwordNER) -> Iterator[str]:
    """The key the component writes entity scores under: its own, else `SCORES_KEY` for the block."""
    if pipe.spans_key:
        yield pipe.spans_key
        return
    pipe.spans_key = SCORES_KEY
    try:
        yield SCORES_KEY
    finally:
        pipe.spans_key = None


def tag_with_uncertainty(pipe: SubwordNER, docs: List[Doc]) -> List[float]:
    """Set the component's annotations on `docs` (as its `pipe` would) and return each doc's uncertainty.

    pipe (SubwordNER): the `wnut_ner` component.
    docs (List[Doc]): the batch.
    RETURNS (List[float]): the uncertainty of each doc (`selection.text_uncertainty`).
    """
    lengths = doc_lengths(docs)
    if not lengths.sum():
        pipe.set_annotations(docs, pipe.predict(docs))
        return [0.0] * len(docs)
    output = pipe.subword_scores(docs)
    probs = pipe.token_probs(output)
    pipe.set_annotations(docs, pipe.decode(output))
    margins = token_margins(pipe.tag_probs(probs), probs.has_rows)
    bounds = numpy.concatenate([[0], numpy.cumsum(lengths)])
    return [text_uncertainty(margins[bounds[i] : bounds[i + 1]]) for i in range(len(docs))]


def predict_docs(
    nlp: Language, docs: Iterable[Doc], *, batch_size: int = 64, component: Optional[str] = None
) -> Iterator[Tuple[Doc, float]]:
    """Run the pipeline over docs in batches; yield each doc, annotated, with its uncertainty.

    nlp (Language): a pipeline with one `wnut_ner` component (or `component` named).
    docs (Iterable[Doc]): docs as `nlp.make_doc` makes them (or read from a DocBin).
    RETURNS (Iterator[Tuple[Doc, float]]): in input order.
    """
    _, pipe = find_wnut_pipe(nlp, component)
    for batch in minibatch(docs, size=batch_size):
        uncertainties: List[float] = [0.0] * len(batch)
        for _, proc in nlp.pipeline:
            if proc is pipe:
                uncertainties = tag_with_uncertainty(pipe, batch)
            elif hasattr(proc, "pipe"):
                batch = list(proc.pipe(batch, batch_size=batch_size))
            else:
                batch = [proc(doc) for doc in batch]
        yield from zip(batch, uncertainties)


def predict_records(
    nlp: Language,
    stream: Iterable[Tuple[Union[str, Doc], Record]],
    *,
    batch_size: int = 64,
    component: Optional[str] = None,
) -> Iterator[Prediction]:
    """Predictions of (text or doc, record) pairs, as `annotate` feeds `nlp.pipe`, in input order."""
    _, pipe = find_wnut_pipe(nlp, component)
    records: deque = deque()

    def docs() -> Iterator[Doc]:
        for item, record in stream:
            records.append(record)
            yield nlp.make_doc(item) if isinstance(item, str) else item

    with _scores_written(pipe) as key:
        for doc, uncertainty in predict_docs(nlp, docs(), batch_size=batch_size, component=component):
            record = records.popleft()
            yield prediction_of(record, doc, uncertainty, key)
            if key == SCORES_KEY and key in doc.spans:
                del doc.spans[key]
