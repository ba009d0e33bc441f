"""Choose the component's `entity_bias` on a dev set, then fit its entity probabilities' temperature there.

A model trained with cross-entropy on few, rare entities tends to be cautious
(on WNUT 17 its precision is far above its recall). Adding a constant to the
entity tags' log-probabilities before Viterbi moves that balance without
retraining; the value is picked by spaCy's entity F1 on the dev set only: the
encoder runs once, decoding once per value. With the bias chosen, the entities
it decodes are fixed, and the temperature of their probabilities
(`pipeline/marginals.py`) is the one minimising their log-loss on dev
(`calibration.EntityOutcomes`); it changes the probabilities, never the entities."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch

from ..data.corpus import read_examples, warn_unknown_gold_labels
from ..errors import ConfigError
from ..ml.encoding import doc_lengths
from ..pipeline.component import find_wnut_pipe
from ..pipeline.decode import TaggedBatch, TokenProbs, decode_entities
from .calibration import EntityOutcomes

DEFAULT_GRID: Tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class BiasScore:
    """spaCy's entity scores on the dev set when decoding with `bias`."""

    bias: float
    p: float
    r: float
    f: float


def _docs_before(nlp: Language, name: str, docs: List[Doc]) -> List[Doc]:
    """Run the components that come before `name` (e.g. an entity_ruler), as `nlp` would."""
    for other, proc in nlp.pipeline:
        if other == name:
            break
        docs = list(proc.pipe(docs))
    return docs


# A float32 log-probability is above -104: a bias beyond this outweighs every one of them (and near
# float32's limit, 3.4e38, it would overflow to inf in decoding).
MAX_BIAS = 1000.0


def check_grid(grid: Iterable[float]) -> Tuple[float, ...]:
    """The grid as floats, refusing an empty grid or a value that is not a finite number within `MAX_BIAS`."""
    values = tuple(float(value) for value in grid)
    if not values:
        raise ConfigError("no bias values to try: the grid is empty")
    bad = [value for value in values if not math.isfinite(value)]
    if bad:
        raise ConfigError(f"bias values must be finite numbers, got {bad}")
    huge = [value for value in values if abs(value) > MAX_BIAS]
    if huge:
        raise ConfigError(
            f"bias values must lie within ±{MAX_BIAS:g} (beyond, every tag's log-probability is outweighed), got {huge}"
        )
    return values


def score_biases(
    nlp: Language,
    examples: Sequence[Example],
    grid: Iterable[float] = DEFAULT_GRID,
    *,
    name: Optional[str] = None,
    batch_size: int = 64,
) -> List[BiasScore]:
    """spaCy's entity P/R/F on `examples` for each bias in `grid` (one encoder pass in all).

    name (Optional[str]): the component; None finds the pipeline's one `wnut_ner` component.
    """
    grid = check_grid(grid)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    name, pipe = find_wnut_pipe(nlp, name)
    docs = _docs_before(nlp, name, [eg.predicted for eg in examples])
    cached: List[Tuple[List[Doc], TokenProbs]] = [
        (list(batch), pipe.token_probs(pipe.subword_scores(list(batch))))
        for batch in minibatch(docs, batch_size)
        if doc_lengths(list(batch)).sum()
    ]
    results = []
    for bias in grid:
        predicted = {}
        for batch, probs in cached:
            entities = decode_entities(probs, pipe.scheme, pipe.decoder, bias)
            copies = [doc.copy() for doc in batch]
            pipe.set_annotations(copies, TaggedBatch(probs.doc_lengths, entities))
            predicted.update((id(doc), copy) for doc, copy in zip(batch, copies))
        scored = [Example(predicted.get(id(doc), doc), eg.reference) for doc, eg in zip(docs, examples)]
        prf = get_ner_prf(scored)
        results.append(BiasScore(bias, prf["ents_p"], prf["ents_r"], prf["ents_f"]))
    return results


def best_bias(scores: Sequence[BiasScore]) -> BiasScore:
    """Highest F; among equals the bias closest to 0."""
    if not scores:
        raise ConfigError("no bias values were scored: the grid is empty")
    return max(scores, key=lambda s: (s.f, -abs(s.bias)))


def tune_entity_bias(
    nlp: Language,
    dev_path: Union[str, Path],
    grid: Iterable[float] = DEFAULT_GRID,
    *,
    name: Optional[str] = None,
    gold_preproc: bool = True,
    batch_size: int = 64,
) -> Tuple[BiasScore, List[BiasScore]]:
    """Score every bias of `grid` on the DocBin(s) at `dev_path`; return the best and all scores."""
    examples = read_examples(nlp, dev_path, gold_preproc=gold_preproc)
    warn_unknown_gold_labels(nlp, examples, dev_path)
    scores = score_biases(nlp, examples, grid, name=name, batch_size=batch_size)
    return best_bias(scores), scores


def parse_grid(text: str) -> Tuple[float, ...]:
    """`--grid` values ("0,0.5,1"), each a finite number."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--grid: {text!r} is not a comma-separated list of numbers") from None
    try:
        return check_grid(values)
    except ConfigError as err:
        raise ConfigError(f"--grid: {err}") from None


def tune_and_save(
    model: Union[str, Path],
    dev: Union[str, Path],
    output: Union[str, Path],
    *,
    grid: Optional[Iterable[float]] = None,
    name: Optional[str] = None,
    gold_preproc: bool = True,
    batch_size: int = 64,
    overwrite: bool = False,
) -> Tuple[BiasScore, List[BiasScore], Dict]:
    """Tune `entity_bias` on `dev`, then fit the entity probabilities' `temperature` on it, and save the
    pipeline with both to `output` (atomically).

    name (Optional[str]): the component; None finds the pipeline's one `wnut_ner` component.
    overwrite (bool): replace an existing output directory.
    RETURNS (Tuple[BiasScore, List[BiasScore], Dict]): the best bias, every bias's scores, and the dev
        calibration before and after (`EntityOutcomes.measures`).
    """
    from ..data.corpus import check_corpus
    from ..data.outputs import DIRECTORY, atomic_path, check_output
    from ..pipeline.component import load_pipeline

    check_output(output, [model, dev], overwrite=overwrite, kind=DIRECTORY)
    check_corpus(dev, gold_preproc=gold_preproc)
    nlp = load_pipeline(model)
    name, _ = find_wnut_pipe(nlp, name)
    best, scores = tune_entity_bias(
        nlp,
        dev,
        grid if grid is not None else DEFAULT_GRID,
        name=name,
        gold_preproc=gold_preproc,
        batch_size=batch_size,
    )
    outcomes = EntityOutcomes(
        nlp, read_examples(nlp, dev, gold_preproc=gold_preproc), name, best.bias, batch_size=batch_size
    )
    temperature = outcomes.fit_temperature()
    calibration = {"before": outcomes.measures(1.0), "after": outcomes.measures(temperature)}
    settings = {"entity_bias": best.bias, "temperature": temperature}
    tuned = load_pipeline(model, config={"components": {name: settings}})
    with atomic_path(output) as tmp:
        tuned.to_disk(tmp)
    return best, scores, calibration
