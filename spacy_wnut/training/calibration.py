"""Calibration of entity probabilities: how well "0.8" means "right 8 times in 10", and a temperature
that makes it so.

Measures are over predicted entities, an entity being correct when a gold entity has exactly its
span and label: the expected calibration error over equal-width bins (the gap between mean
probability and accuracy in each bin, weighted by the bin's share), the Brier score, and the
reliability table behind both. `fit_temperature` chooses the temperature `T` of the tag-sequence
distribution (`pipeline/marginals.py`) that minimises the log-loss of those probabilities on a
held-out set; the predicted entities do not change with `T`, only their probabilities.
"""

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy

from ..errors import ConfigError

DEFAULT_BINS = 10
# Temperatures searched (log scale): far below 1 sharpens every probability to 0 or 1, far above
# flattens them to the uniform distribution over tag sequences.
TEMPERATURE_BOUNDS: Tuple[float, float] = (0.05, 20.0)


def _checked(probs: Sequence[float], correct: Sequence[bool]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    p = numpy.asarray(probs, dtype="f8")
    c = numpy.asarray(correct, dtype=bool)
    if p.shape != c.shape or p.ndim != 1:
        raise ValueError(f"probs and correct must be flat and of one length, got {p.shape} and {c.shape}")
    if len(p) and (not numpy.all(numpy.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return p, c


def reliability_table(probs: Sequence[float], correct: Sequence[bool], bins: int = DEFAULT_BINS) -> List[Dict]:
    """Per equal-width bin of probability: its bounds, how many entities, their mean probability and accuracy.

    probs (Sequence[float]): each predicted entity's probability.
    correct (Sequence[bool]): whether it is a gold entity (exact span and label).
    bins (int): number of bins over [0, 1]; the last one includes 1.
    RETURNS (List[Dict]): `{"low", "high", "count", "mean_prob", "accuracy"}` per bin (None where empty).
    """
    if bins < 1:
        raise ConfigError(f"bins must be at least 1, got {bins}")
    p, c = _checked(probs, correct)
    index = numpy.minimum((p * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": count,
                "mean_prob": float(p[members].mean()) if count else None,
                "accuracy": float(c[members].mean()) if count else None,
            }
        )
    return table


def expected_calibration_error(probs: Sequence[float], correct: Sequence[bool], bins: int = DEFAULT_BINS) -> float:
    """Sum over bins of (share of entities) x |accuracy - mean probability|; 0 for no entities."""
    table = reliability_table(probs, correct, bins)
    total = sum(row["count"] for row in table)
    if total == 0:
        return 0.0
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["mean_prob"]) for row in table if row["count"]))


def brier_score(probs: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean squared difference between probability and outcome (1 correct, 0 not); 0 for no entities."""
    p, c = _checked(probs, correct)
    return float(numpy.mean((p - c) ** 2)) if len(p) else 0.0


def log_loss(log_probs: numpy.ndarray, correct: numpy.ndarray) -> float:
    """Mean negative log-likelihood of the outcomes, from log-probabilities (stable near 0 and 1)."""
    log_probs = numpy.minimum(log_probs, 0.0)
    log_not = numpy.log(-numpy.expm1(numpy.minimum(log_probs, -1e-12)))  # log(1 - p)
    return float(-numpy.mean(numpy.where(correct, log_probs, log_not)))


def fit_temperature(
    log_probs_at: Callable[[float], numpy.ndarray],
    correct: Sequence[bool],
    bounds: Tuple[float, float] = TEMPERATURE_BOUNDS,
    tolerance: float = 1e-3,
) -> float:
    """The temperature minimising the log-loss of the entity probabilities (golden-section search on log T).

    log_probs_at (Callable[[float], numpy.ndarray]): the predicted entities' log-probabilities at a temperature.
    correct (Sequence[bool]): whether each predicted entity is a gold one.
    bounds (Tuple[float, float]): the temperatures searched.
    tolerance (float): stop when the bracket of log T is this narrow.
    RETURNS (float): the temperature; 1.0 when there is nothing to fit (no entities, or all of one outcome).
    """
    outcomes = numpy.asarray(correct, dtype=bool)
    if len(outcomes) == 0 or outcomes.all() or not outcomes.any():
        return 1.0

    def loss(log_t: float) -> float:
        return log_loss(log_probs_at(math.exp(log_t)), outcomes)

    low, high = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    while high - low > tolerance:
        if loss_a <= loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return math.exp((low + high) / 2)


class EntityOutcomes:
    """The predicted entities of a labelled set, whether each is gold, and their probability at any
    temperature: one encoder pass, then forward-backward per temperature.

    nlp (Language): the pipeline; its `wnut_ner` component's decoder and `entity_bias` pick the entities.
    examples (Sequence[Example]): the labelled docs (predicted docs tokenised as the reference).
    name (Optional[str]): the component; None finds the pipeline's one `wnut_ner` component.
    entity_bias (Optional[float]): decode with this bias instead of the component's.
    """

    def __init__(self, nlp, examples, name=None, entity_bias=None, batch_size: int = 64) -> None:
        from spacy.util import minibatch

        from ..ml.encoding import doc_lengths
        from ..pipeline.component import find_wnut_pipe
        from ..pipeline.decode import decode_entities

        _, pipe = find_wnut_pipe(nlp, name)
        bias = pipe.entity_bias if entity_bias is None else float(entity_bias)
        self.allowed = pipe.scheme.allowed_transitions()
        self.batches = []
        for chunk in minibatch(list(examples), batch_size):
            docs = [eg.predicted for eg in chunk]
            if not doc_lengths(docs).sum():
                continue
            probs = pipe.token_probs(pipe.subword_scores(docs))
            spans = decode_entities(probs, pipe.scheme, pipe.decoder, bias)
            log_probs = numpy.log(numpy.maximum(probs.probs, 1e-12))
            log_probs[:, 1:] += bias
            log_probs[~probs.has_rows] = pipe.scheme.no_rows_prior()
            offsets = numpy.concatenate([[0], numpy.cumsum(probs.doc_lengths)[:-1]])
            gold = {
                (offsets[i] + ent.start, offsets[i] + ent.end, pipe.labels.index(ent.label_))
                for i, eg in enumerate(chunk)
                for ent in eg.reference.ents
                if ent.label_ in pipe.labels
            }
            keys = zip(spans.starts.tolist(), spans.ends.tolist(), spans.label_ids.tolist())
            correct = numpy.array([key in gold for key in keys], dtype=bool)
            self.batches.append((log_probs, probs.doc_lengths, spans, correct))
        self.correct = numpy.concatenate([b[3] for b in self.batches]) if self.batches else numpy.zeros(0, bool)

    def log_probs(self, temperature: float = 1.0) -> numpy.ndarray:
        """Each predicted entity's log-probability at `temperature`."""
        from ..pipeline.marginals import entity_log_probs

        if not self.batches:
            return numpy.zeros(0)
        return numpy.concatenate(
            [
                entity_log_probs(lp, lengths, self.allowed, s.starts, s.ends, s.label_ids, temperature)
                for lp, lengths, s, _ in self.batches
            ]
        )

    def fit_temperature(self) -> float:
        """The temperature minimising the log-loss of these entities' probabilities."""
        return fit_temperature(self.log_probs, self.correct)

    def measures(self, temperature: float = 1.0) -> Dict:
        """Entities, accuracy, mean probability, ECE, Brier and the reliability table at `temperature`."""
        probs = numpy.exp(self.log_probs(temperature))
        correct = self.correct
        return {
            "temperature": temperature,
            "entities": int(len(probs)),
            "accuracy": float(correct.mean()) if len(correct) else None,
            "mean_probability": float(probs.mean()) if len(probs) else None,
            "ece": expected_calibration_error(probs, correct),
            "brier": brier_score(probs, correct),
            "reliability": reliability_table(probs, correct),
        }


def threshold_curve(
    probs: Sequence[float], correct: Sequence[bool], n_gold: int, steps: int = 100
) -> List[Dict[str, float]]:
    """Entity precision, recall and F1 when entities below each threshold are left out (`min_score`).

    probs (Sequence[float]): each predicted entity's probability.
    correct (Sequence[bool]): whether it is a gold entity.
    n_gold (int): the gold entities of the set (recall's denominator).
    steps (int): thresholds 0, 1/steps, ..., 1.
    RETURNS (List[Dict[str, float]]): `{"threshold", "p", "r", "f", "kept"}` per threshold.
    """
    p, c = _checked(probs, correct)
    rows = []
    for threshold in numpy.linspace(0.0, 1.0, steps + 1):
        kept = p >= threshold
        true = int((c & kept).sum())
        precision = true / int(kept.sum()) if kept.any() else 0.0
        recall = true / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"threshold": float(threshold), "p": precision, "r": recall, "f": f1, "kept": int(kept.sum())})
    return rows


def choose_thresholds(curve: Sequence[Dict[str, float]], target_precision: Optional[float] = None) -> Dict:
    """The threshold of highest F1 (the lowest among equals), and the lowest reaching `target_precision`.

    RETURNS (Dict): `{"best_f1": row, "target": row or None}`.
    """
    best = max(curve, key=lambda row: (row["f"], -row["threshold"]))
    target = None
    if target_precision is not None:
        target = next((row for row in curve if row["kept"] and row["p"] >= target_precision), None)
    return {"best_f1": best, "target": target}
