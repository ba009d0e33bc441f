"""Entity probabilities as marginals of the constrained tag-sequence distribution: checked against
brute-force enumeration of every tag sequence on short docs (hypothesis), and the temperature fit."""

import itertools
import math
from typing import Tuple

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_wnut.pipeline.decode import tags_to_spans
from spacy_wnut.pipeline.marginals import NEG_INF, logsumexp, tag_marginals, transition_log_scores
from spacy_wnut.pipeline.schemes import TagScheme
from spacy_wnut.training.calibration import (
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_table,
)


# A per-doc reference implementation (a loop over the spans of one doc) that the batched
# `entity_log_probs` is checked against, beside brute-force enumeration.
def forward_backward(
    emissions: numpy.ndarray, transitions: numpy.ndarray
) -> Tuple[numpy.ndarray, numpy.ndarray, float]:
    """Forward and backward log-scores of one doc.

    emissions (numpy.ndarray): (n, n_tags) log-scores of each token's tags (already divided by T).
    transitions (numpy.ndarray): (n_tags, n_tags) log-scores; the first tag follows tag 0 (`O`).
    RETURNS (Tuple[numpy.ndarray, numpy.ndarray, float]): `alpha[t, y]` (paths ending in `y` at `t`,
        emission included), `beta[t, y]` (continuations after `y` at `t`), and log Z.
    """
    n, n_tags = emissions.shape
    alpha = numpy.empty((n, n_tags))
    beta = numpy.zeros((n, n_tags))
    alpha[0] = transitions[0] + emissions[0]
    for t in range(1, n):
        alpha[t] = logsumexp(alpha[t - 1][:, None] + transitions, axis=0) + emissions[t]
    for t in range(n - 2, -1, -1):
        beta[t] = logsumexp(transitions + (emissions[t + 1] + beta[t + 1])[None, :], axis=1)
    return alpha, beta, float(logsumexp(alpha[-1], axis=0))


def span_log_probs(
    emissions: numpy.ndarray,
    transitions: numpy.ndarray,
    starts: numpy.ndarray,
    ends: numpy.ndarray,
    label_ids: numpy.ndarray,
) -> numpy.ndarray:
    """Log-probability of each span `[starts[i], ends[i])` being exactly one entity of `label_ids[i]`, in one doc.

    Tags are laid out `O, B-l0, I-l0, B-l1, ...` (`schemes.TagScheme`).
    RETURNS (numpy.ndarray): (n_spans,) log-probabilities.
    """
    n = len(emissions)
    if len(starts) == 0:
        return numpy.zeros((0,))
    alpha, beta, log_z = forward_backward(emissions, transitions)
    result = numpy.empty(len(starts))
    for i, (start, end, label) in enumerate(zip(starts, ends, label_ids)):
        begin, inside = 1 + 2 * int(label), 2 + 2 * int(label)
        score = alpha[start, begin]
        score += float(emissions[start + 1 : end, inside].sum())  # B->I and I->I transitions score 0
        if end < n:  # the next tag does not continue the entity
            last = begin if end - start == 1 else inside
            onward = transitions[last] + emissions[end] + beta[end]
            onward[inside] = NEG_INF
            score += float(logsumexp(onward, axis=0))
        result[i] = score - log_z
    return result


SCHEME = TagScheme(("a", "b"))


def valid_sequences(emissions, allowed):
    """Every tag sequence the transitions allow, with its unnormalised probability."""
    for tags in itertools.product(range(SCHEME.n_tags), repeat=len(emissions)):
        previous, score = 0, 0.0
        for t, tag in enumerate(tags):
            if not allowed[previous, tag]:
                break
            score += emissions[t, tag]
            previous = tag
        else:
            yield tags, math.exp(score)


def brute_force(emissions, allowed):
    """Probability of each (start, end, label) entity by enumerating every valid tag sequence."""
    weights, total = {}, 0.0
    for tags, weight in valid_sequences(emissions, allowed):
        total += weight
        spans = tags_to_spans(numpy.array(tags), numpy.zeros(len(tags)))
        for key in zip(spans.starts.tolist(), spans.ends.tolist(), spans.label_ids.tolist()):
            weights[key] = weights.get(key, 0.0) + weight
    return {key: weight / total for key, weight in weights.items()}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**32 - 1), st.floats(0.2, 5.0))
def test_span_probabilities_equal_brute_force_enumeration(n, seed, scale):
    emissions = numpy.random.default_rng(seed).normal(size=(n, SCHEME.n_tags)) * scale
    allowed = SCHEME.allowed_transitions()
    expected = brute_force(emissions, allowed)
    keys = sorted(expected)
    starts, ends, labels = (numpy.array([k[i] for k in keys]) for i in range(3))
    got = numpy.exp(span_log_probs(emissions, transition_log_scores(allowed), starts, ends, labels))
    assert numpy.allclose(got, [expected[k] for k in keys], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3), st.integers(0, 2**32 - 1), st.floats(0.3, 3.0))
def test_tag_marginals_equal_brute_force_enumeration(lengths, seed, temperature):
    allowed = SCHEME.allowed_transitions()
    log_probs = numpy.random.default_rng(seed).normal(size=(sum(lengths), SCHEME.n_tags)) * 2
    expected, offset = [], 0
    for n in lengths:
        emissions = log_probs[offset : offset + n] / temperature
        marginals, total = numpy.zeros((n, SCHEME.n_tags)), 0.0
        for tags, weight in valid_sequences(emissions, allowed):
            total += weight
            marginals[numpy.arange(n), list(tags)] += weight
        expected.append(marginals / max(total, 1e-300))
        offset += n
    got = tag_marginals(log_probs, numpy.array(lengths), allowed, temperature)
    assert got.shape == (sum(lengths), SCHEME.n_tags)
    assert numpy.allclose(got, numpy.concatenate(expected), atol=1e-9)
    assert numpy.allclose(got.sum(axis=1), 1.0)


def test_probabilities_stay_finite_with_extreme_scores():
    emissions = numpy.full((30, SCHEME.n_tags), -1e4)
    emissions[:, 0] = 0.0
    emissions[3, 1] = 500.0
    log_p = span_log_probs(
        emissions,
        transition_log_scores(SCHEME.allowed_transitions()),
        numpy.array([3]),
        numpy.array([4]),
        numpy.array([0]),
    )
    assert numpy.isfinite(log_p).all() and math.isclose(math.exp(log_p[0]), 1.0)


def test_a_temperature_undoes_overconfidence():
    rng = numpy.random.default_rng(0)
    z = rng.normal(size=20000)
    correct = rng.random(20000) < 1 / (1 + numpy.exp(-z))

    def log_sigmoid(x):
        return -numpy.logaddexp(0, -x)

    temperature = fit_temperature(lambda t: log_sigmoid(3 * z / t), correct)
    assert abs(temperature - 3) < 0.1
    before = expected_calibration_error(numpy.exp(log_sigmoid(3 * z)), correct)
    after = expected_calibration_error(numpy.exp(log_sigmoid(3 * z / temperature)), correct)
    assert before > 0.1 and after < 0.02


def test_reliability_table_ece_and_brier_by_hand():
    probs, correct = [0.05, 0.15, 0.95, 1.0], [False, True, True, True]
    table = reliability_table(probs, correct, bins=10)
    assert [row["count"] for row in table] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert table[9]["mean_prob"] == 0.975 and table[9]["accuracy"] == 1.0
    assert math.isclose(expected_calibration_error(probs, correct), (0.05 + 0.85 + 2 * 0.025) / 4)
    assert math.isclose(brier_score(probs, correct), (0.05**2 + 0.85**2 + 0.05**2 + 0) / 4)
    assert fit_temperature(lambda t: numpy.log(numpy.array(probs)), [True] * 4) == 1.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=5), st.integers(0, 2**32 - 1), st.floats(0.3, 3.0))
def test_the_batched_probabilities_equal_each_docs_own(lengths, seed, temperature):
    from spacy_wnut.pipeline.marginals import entity_log_probs

    rng = numpy.random.default_rng(seed)
    allowed = SCHEME.allowed_transitions()
    log_probs = rng.normal(size=(sum(lengths), SCHEME.n_tags)) * 2
    offsets = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
    starts, ends, labels, expected = [], [], [], []
    for offset, n in zip(offsets, lengths):
        for start in range(n):
            for end in range(start + 1, n + 1):
                for label in range(2):
                    starts.append(offset + start)
                    ends.append(offset + end)
                    labels.append(label)
                    one = span_log_probs(
                        log_probs[offset : offset + n] / temperature,
                        transition_log_scores(allowed),
                        numpy.array([start]),
                        numpy.array([end]),
                        numpy.array([label]),
                    )
                    expected.append(one[0])
    got = entity_log_probs(
        log_probs,
        numpy.array(lengths),
        allowed,
        numpy.array(starts),
        numpy.array(ends),
        numpy.array(labels),
        temperature,
    )
    assert numpy.allclose(got, expected, atol=1e-9)


def test_entity_scores_are_probabilities_and_min_score_drops_those_below_it(model_dir):
    import spacy

    from ..util import TRAIN_DATA

    texts = [text for text, _ in TRAIN_DATA]
    nlp = spacy.load(model_dir, config={"components": {"wnut_ner": {"spans_key": "sc"}}})
    found = [
        (ent.text, float(score))
        for doc in nlp.pipe(texts)
        for ent, score in zip(doc.spans["sc"], doc.spans["sc"].attrs["scores"])
    ]
    assert found and all(0.0 <= score <= 1.0 for _, score in found)
    threshold = sorted(score for _, score in found)[len(found) // 2]
    strict = spacy.load(model_dir, config={"components": {"wnut_ner": {"spans_key": "sc", "min_score": threshold}}})
    kept = [ent.text for doc in strict.pipe(texts) for ent in doc.ents]
    assert kept == [text for text, score in found if score >= threshold]


def test_annotate_min_score_leaves_out_entities_below_it(model_dir, tmp_path):
    import json

    from spacy_wnut.cli import main
    from spacy_wnut.tools.annotate import annotate

    from ..util import TRAIN_DATA

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in TRAIN_DATA * 2), encoding="utf-8")
    annotate(model_dir, source, tmp_path / "all.jsonl", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    scores = sorted(e["score"] for row in rows for e in row["entities"])
    threshold = scores[len(scores) // 2]
    annotate(model_dir, source, tmp_path / "kept.jsonl", progress=False, min_score=threshold)
    kept = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert [r["entities"] for r in kept] == [[e for e in r["entities"] if e["score"] >= threshold] for r in rows]
    assert main(["annotate", str(model_dir), str(source), str(tmp_path / "r.jsonl"), "--min-score", "1.5"]) == 2


def test_threshold_curve_and_the_thresholds_chosen_from_it_by_hand():
    from spacy_wnut.training.calibration import choose_thresholds, threshold_curve

    probs, correct = [0.2, 0.4, 0.6, 0.9], [False, True, False, True]
    curve = threshold_curve(probs, correct, n_gold=4, steps=10)
    at = {round(row["threshold"], 1): row for row in curve}
    assert at[0.0]["kept"] == 4 and at[0.0]["p"] == 0.5 and at[0.0]["r"] == 0.5
    assert at[0.7]["kept"] == 1 and at[0.7]["p"] == 1.0 and at[0.7]["r"] == 0.25
    assert at[1.0]["kept"] == 0 and at[1.0]["f"] == 0.0
    chosen = choose_thresholds(curve, target_precision=0.6)
    assert round(chosen["best_f1"]["threshold"], 1) == 0.3  # P 2/3, R 1/2: F1 0.571, the highest
    assert round(chosen["target"]["threshold"], 1) == 0.3 and choose_thresholds(curve, 1.01)["target"] is None


def test_temperature_and_min_score_are_saved_and_kept_by_the_runtime_pipeline(model_dir, tmp_path):
    import spacy

    from spacy_wnut.tools.runtime_export import export_runtime

    from ..util import TRAIN_DATA

    texts = [text for text, _ in TRAIN_DATA]
    settings = {"spans_key": "sc", "temperature": 1.7, "min_score": 0.3}
    nlp = spacy.load(model_dir, config={"components": {"wnut_ner": settings}})
    nlp.to_disk(tmp_path / "calibrated")
    export_runtime(tmp_path / "calibrated", tmp_path / "runtime")

    def entities(path):
        loaded = spacy.load(path)
        pipe = loaded.get_pipe("wnut_ner")
        assert (pipe.temperature, pipe.min_score) == (1.7, 0.3)
        docs = list(loaded.pipe(texts))
        spans = [[(s.start, s.end, s.label_) for s in doc.spans["sc"]] for doc in docs]
        return spans, [float(x) for doc in docs for x in doc.spans["sc"].attrs["scores"]]

    spans, scores = entities(tmp_path / "calibrated")
    runtime_spans, runtime_scores = entities(tmp_path / "runtime")
    assert spans == runtime_spans and runtime_scores == pytest.approx(scores, abs=1e-4)
    assert scores and min(scores) >= 0.3
