"""Choose the component's `entity_bias` on a dev set: run the encoder once, decode once per value.

A model trained with cross-entropy on few, rare entities tends to be cautious
(on WNUT 17 its precision is far above its recall). Adding a constant to the
entity tags' log-probabilities before Viterbi moves that balance without
retraining; the value is picked by spaCy's entity F1 on the dev set only.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

import numpy
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import minibatch

from .component import SubwordNER, TaggedBatch

DEFAULT_GRID: Tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class BiasScore:
    """spaCy's entity scores on the dev set when decoding with `bias`."""

    bias: float
    p: float
    r: float
    f: float


@dataclass
class _CachedBatch:
    docs: List[Doc]
    token_probs: numpy.ndarray
    has_rows: numpy.ndarray
    lengths: numpy.ndarray


def _docs_before(nlp: Language, name: str, docs: List[Doc]) -> List[Doc]:
    """Run the components that come before `name` (e.g. an entity_ruler), as `nlp` would."""
    for other, proc in nlp.pipeline:
        if other == name:
            break
        docs = list(proc.pipe(docs))
    return docs


def _cache_token_probs(pipe: SubwordNER, docs: List[Doc], batch_size: int) -> List[_CachedBatch]:
    cached = []
    for batch in minibatch(docs, batch_size):
        lengths = numpy.array([len(doc) for doc in batch], dtype="i")
        if not lengths.sum():
            continue
        token_probs, has_rows = pipe.token_probs(pipe.model.predict(batch))
        cached.append(_CachedBatch(list(batch), token_probs, has_rows, lengths))
    return cached


def score_biases(
    nlp: Language, examples: Sequence[Example], grid: Iterable[float] = DEFAULT_GRID,
    *, name: str = "wnut_ner", batch_size: int = 64,
) -> List[BiasScore]:
    """spaCy's entity P/R/F on `examples` for each bias in `grid` (one encoder pass in all)."""
    pipe = nlp.get_pipe(name)
    if not isinstance(pipe, SubwordNER):
        raise ValueError(f"component {name!r} is a {type(pipe).__name__}, not a wnut_ner component")
    docs = _docs_before(nlp, name, [eg.predicted for eg in examples])
    cached = _cache_token_probs(pipe, docs, batch_size)
    results = []
    for bias in grid:
        predicted = {}
        for batch in cached:
            entities = pipe.decode_probs(batch.token_probs, batch.has_rows, batch.lengths, float(bias))
            copies = [doc.copy() for doc in batch.docs]
            pipe.set_annotations(copies, TaggedBatch(batch.lengths, entities))
            predicted.update((id(doc), copy) for doc, copy in zip(batch.docs, copies))
        scored = [
            Example(predicted.get(id(doc), doc), eg.reference)
            for doc, eg in zip(docs, examples)
        ]
        prf = get_ner_prf(scored)
        results.append(BiasScore(float(bias), prf["ents_p"], prf["ents_r"], prf["ents_f"]))
    return results


def best_bias(scores: Sequence[BiasScore]) -> BiasScore:
    """Highest F; among equals the bias closest to 0."""
    if not scores:
        raise ValueError("no bias values were scored: the grid is empty")
    return max(scores, key=lambda s: (s.f, -abs(s.bias)))


def tune_entity_bias(
    nlp: Language, dev_path: Union[str, Path], grid: Iterable[float] = DEFAULT_GRID,
    *, name: str = "wnut_ner", gold_preproc: bool = True, batch_size: int = 64,
) -> Tuple[BiasScore, List[BiasScore]]:
    """Score every bias of `grid` on the DocBin at `dev_path`; return the best and all scores."""
    examples = list(Corpus(dev_path, gold_preproc=gold_preproc)(nlp))
    if not examples:
        raise ValueError(f"{dev_path}: no documents to tune on")
    scores = score_biases(nlp, examples, grid, name=name, batch_size=batch_size)
    return best_bias(scores), scores
