"""Soft targets: the distillation loss against its formula, their storage, alignment and projection."""

import math

import numpy
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_wnut.errors import ConfigError, InputError
from spacy_wnut.ml.alignment import TokenRows, project_gold
from spacy_wnut.pipeline.soft_targets import (
    SoftTargets,
    aligned_targets,
    distillation_loss,
    get_soft_targets,
    project_targets,
    sentence_doc,
    set_soft_targets,
    target_labels,
)

TAGS = ("O", "B-person", "I-person")
NAN = float("nan")


def test_the_loss_equals_the_formula_on_a_hand_computed_case():
    # Student uniform over 3 tags, gold tag 1, teacher (0.5, 0.25, 0.25), α = 0.5.
    # T = 1: KL = 0.5·ln 1.5 + 0.5·ln 0.75 = 0.0588915; CE = ln 3 = 1.0986123;
    #        loss = 0.5 · 0.0588915 + 0.5 · 1.0986123 = 0.5787519.
    # T = 2: q_T ∝ sqrt(q) = (0.414214, 0.292893, 0.292893), p_T uniform, KL = 0.0142206;
    #        loss = 0.5 · 4 · 0.0142206 + 0.5 · 1.0986123 = 0.5777473.
    scores = numpy.zeros((1, 3), dtype="f")
    gold = numpy.array([1])
    teacher = numpy.log(numpy.array([[0.5, 0.25, 0.25]], dtype="f"))
    loss, _ = distillation_loss(scores, gold, teacher, alpha=0.5, temperature=1.0)
    assert loss == pytest.approx(0.5787519, abs=1e-6)
    loss, _ = distillation_loss(scores, gold, teacher, alpha=0.5, temperature=2.0)
    assert loss == pytest.approx(0.5777473, abs=1e-6)


def test_rows_without_gold_learn_from_the_teacher_alone_and_rows_without_targets_from_gold_alone():
    scores = numpy.zeros((2, 3), dtype="f")
    teacher = numpy.log(numpy.array([[0.5, 0.25, 0.25], [NAN, NAN, NAN]], dtype="f"))
    loss, _ = distillation_loss(scores, numpy.array([-1, 2]), teacher, alpha=0.3, temperature=1.0)
    assert loss == pytest.approx((0.0588915 + math.log(3)) / 2, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    alpha=st.floats(0.0, 1.0),
    temperature=st.floats(0.5, 4.0),
)
def test_the_gradient_is_the_losss_derivative(seed, alpha, temperature):
    rng = numpy.random.default_rng(seed)
    n, k = 5, 5
    scores = rng.normal(size=(n, k))
    gold = rng.integers(-1, k, size=n)
    teacher = numpy.log(rng.dirichlet(numpy.ones(k), size=n))
    teacher[rng.random(n) < 0.3] = NAN
    _, grad = distillation_loss(scores, gold, teacher, alpha, temperature)
    eps = 1e-5
    for i in range(n):
        for j in range(k):
            up, down = scores.copy(), scores.copy()
            up[i, j] += eps
            down[i, j] -= eps
            numeric = (
                distillation_loss(up, gold, teacher, alpha, temperature)[0]
                - distillation_loss(down, gold, teacher, alpha, temperature)[0]
            ) / (2 * eps)
            assert grad[i, j] == pytest.approx(numeric, abs=2e-4)


def test_alpha_zero_is_cross_entropy_where_there_is_gold():
    rng = numpy.random.default_rng(0)
    scores = rng.normal(size=(4, 3))
    gold = numpy.array([0, 2, 1, 1])
    teacher = numpy.log(rng.dirichlet(numpy.ones(3), size=4))
    loss, grad = distillation_loss(scores, gold, teacher, alpha=0.0, temperature=2.0)
    probs = numpy.exp(scores) / numpy.exp(scores).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-numpy.log(probs[numpy.arange(4), gold]).mean(), abs=1e-6)
    onehot = numpy.eye(3)[gold]
    numpy.testing.assert_allclose(grad, (probs - onehot) / 4, atol=1e-6)


def test_no_signal_gives_zero_loss_and_gradient():
    loss, grad = distillation_loss(numpy.ones((2, 3)), numpy.array([-1, -1]), numpy.full((2, 3), NAN), 0.5, 2.0)
    assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("alpha,temperature", [(-0.1, 1.0), (1.5, 1.0), (0.5, 0.0)])
def test_bad_settings_are_refused(alpha, temperature):
    with pytest.raises(ConfigError):
        distillation_loss(numpy.zeros((1, 3)), numpy.array([0]), numpy.zeros((1, 3)), alpha, temperature)


def make_targets(n_tokens: int, seed: int = 0) -> SoftTargets:
    rng = numpy.random.default_rng(seed)
    return SoftTargets(TAGS, numpy.log(rng.dirichlet(numpy.ones(3), size=n_tokens)).astype("f"))


def test_targets_survive_a_docbin_and_sentence_splitting():
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["Tom", "Hanks", ".", "Hi", "there"], sent_starts=[True, False, False, True, False])
    targets = make_targets(5)
    targets.log_probs[2] = NAN
    set_soft_targets(doc, targets)
    docbin = DocBin(store_user_data=True, docs=[doc])
    (back,) = DocBin().from_bytes(docbin.to_bytes()).get_docs(nlp.vocab)
    read = get_soft_targets(back)
    numpy.testing.assert_array_equal(read.log_probs, targets.log_probs)
    assert read.tags == TAGS and list(read.has_target) == [True, True, False, True, True]
    second = sentence_doc(list(back.sents)[1])
    numpy.testing.assert_array_equal(get_soft_targets(second).log_probs, targets.log_probs[3:])
    assert target_labels(back) == ("person",)


def test_damaged_targets_name_where_they_are():
    doc = Doc(spacy.blank("en").vocab, words=["a", "b"])
    doc.user_data["spacy_wnut.soft_targets"] = {"tags": ["O"], "shape": [2, 3], "log_probs": b"\0" * 24}
    with pytest.raises(InputError, match="train.spacy doc 3"):
        get_soft_targets(doc, "train.spacy doc 3")


def test_targets_align_one_to_one_through_spacy_tokens_and_nowhere_else():
    nlp = spacy.blank("en")
    reference = Doc(nlp.vocab, words=["New", "York", "rocks"])
    targets = make_targets(3)
    set_soft_targets(reference, targets)
    # The student's tokenization splits "rocks" in two and merges "New York".
    predicted = Doc(nlp.vocab, words=["New York", "roc", "ks"], spaces=[True, False, False])
    aligned = aligned_targets(Example(predicted, reference), TAGS)
    assert numpy.isnan(aligned).all()
    same = aligned_targets(Example(Doc(nlp.vocab, words=["New", "York", "rocks"]), reference), TAGS)
    numpy.testing.assert_array_equal(same, targets.log_probs)
    shuffled = aligned_targets(Example(Doc(nlp.vocab, words=["New", "York", "rocks"]), reference), TAGS[::-1])
    numpy.testing.assert_array_equal(shuffled, targets.log_probs[:, ::-1])


def test_a_teacher_with_other_labels_is_refused():
    reference = Doc(spacy.blank("en").vocab, words=["a"])
    set_soft_targets(reference, make_targets(1))
    with pytest.raises(ConfigError, match="the teacher lacks \\['B-group'"):
        aligned_targets(Example(reference.copy(), reference), ("O", "B-group", "I-group"))


def test_no_targets_gives_none():
    doc = Doc(spacy.blank("en").vocab, words=["a"])
    assert aligned_targets(Example(doc, doc), TAGS) is None


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(st.integers(0, 3), min_size=1, max_size=8),
    method=st.sampled_from(["first", "all"]),
    missing=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_targets_go_to_the_rows_gold_goes_to(counts, method, missing):
    tokens = numpy.repeat(numpy.arange(len(counts)), counts)
    pairs = TokenRows(tokens, numpy.arange(len(tokens)), len(counts))
    n_rows = len(tokens) + 1
    targets = numpy.log(numpy.random.default_rng(0).dirichlet(numpy.ones(3), size=len(counts))).astype("f")
    targets[numpy.array(missing[: len(counts)])] = NAN
    rows = project_targets(targets, pairs, method, n_rows, window_length=n_rows)
    has = ~numpy.isnan(targets).any(axis=1)
    row_token = project_gold(numpy.where(has, numpy.arange(len(counts)), -1), pairs, method, n_rows, n_rows)
    for row, token in enumerate(row_token):
        if token < 0:
            assert numpy.isnan(rows[row]).all()
        else:
            numpy.testing.assert_array_equal(rows[row], targets[token])
