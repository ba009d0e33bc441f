"""The uncertainty measure and the selection `export-tasks --select` and bench/active_learning.py share."""

import numpy
import pytest

from spacy_wnut.pipeline.component import find_wnut_pipe
from spacy_wnut.pipeline.decode import TokenProbs, tag_probs
from spacy_wnut.pipeline.schemes import TagScheme
from spacy_wnut.tools.annotation.predict import predict_docs
from spacy_wnut.tools.annotation.selection import Selector, select_indices, text_uncertainty, token_margins

from ..util import TRAIN_DATA


def test_margin_is_best_minus_second_best_probability():
    probs = numpy.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    assert token_margins(probs, numpy.array([True, True])) == pytest.approx([0.5, 0.05])


def test_token_without_subwords_has_full_margin():
    probs = numpy.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    assert token_margins(probs, numpy.array([False, True])) == pytest.approx([1.0, 0.0])


def test_margins_come_from_the_same_distribution_as_the_entities():
    # One token: I cannot start a doc, so its marginals are O and B renormalised (0.75, 0.25); with
    # entity_bias applied as decoding applies it, O 0.6 against B 0.6: no margin left; the temperature
    # flattens them.
    probs = TokenProbs(numpy.array([[0.6, 0.2, 0.2]]), numpy.array([True]), numpy.array([1]))
    scheme = TagScheme(("a",))
    assert token_margins(tag_probs(probs, scheme), probs.has_rows) == pytest.approx([0.5])
    assert token_margins(tag_probs(probs, scheme, entity_bias=numpy.log(3.0)), probs.has_rows) == pytest.approx(
        [0.0], abs=1e-9
    )
    assert token_margins(tag_probs(probs, scheme, temperature=2.0), probs.has_rows) < 0.5


def test_uncertainty_is_one_minus_the_lowest_margin():
    assert text_uncertainty(numpy.array([0.9, 0.25, 0.6])) == pytest.approx(0.75)
    assert text_uncertainty(numpy.array([])) == 0.0


def test_uncertain_selection_keeps_the_most_uncertain_first():
    assert select_indices([0.1, 0.9, 0.5, 0.9, 0.2], "uncertain", limit=3) == [1, 3, 2]


def test_random_selection_is_the_same_for_a_seed_and_differs_across_seeds():
    values = [0.0] * 50
    first, again = select_indices(values, "random", 10, seed=1), select_indices(values, "random", 10, seed=1)
    other = select_indices(values, "random", 10, seed=2)
    assert first == again and first != other
    assert len(set(first)) == 10 and all(0 <= i < 50 for i in first)


def test_random_selection_without_limit_is_a_permutation():
    chosen = select_indices([0.0] * 20, "random", None, seed=0)
    assert sorted(chosen) == list(range(20)) and chosen != list(range(20))


def test_all_selection_keeps_input_order_up_to_the_limit():
    assert select_indices([0.5, 0.1, 0.9], "all", limit=2) == [0, 1]


def test_streaming_selector_matches_the_list_selection():
    values = list(numpy.random.default_rng(0).random(200))
    selector = Selector("uncertain", limit=7).extend((i, v) for i, v in enumerate(values))
    assert selector.selected() == select_indices(values, "uncertain", 7) and selector.seen == 200


@pytest.mark.parametrize("how,limit", [("most", None), ("all", 0), ("random", -3)])
def test_unknown_selection_or_bad_limit_is_refused(how, limit):
    with pytest.raises(ValueError, match="--select|--limit"):
        Selector(how, limit)


def test_pipeline_uncertainty_is_computed_from_the_components_tag_marginals(trained_nlp):
    _, pipe = find_wnut_pipe(trained_nlp)
    docs = [trained_nlp.make_doc(text) for text, _ in TRAIN_DATA]
    got = [u for _, u in predict_docs(trained_nlp, [trained_nlp.make_doc(t) for t, _ in TRAIN_DATA])]
    probs = pipe.token_probs(pipe.subword_scores(docs))
    margins = token_margins(pipe.tag_probs(probs), probs.has_rows)
    bounds = numpy.cumsum([0] + [len(d) for d in docs])
    expected = [text_uncertainty(margins[bounds[i] : bounds[i + 1]]) for i in range(len(docs))]
    assert got == pytest.approx(expected) and all(0.0 <= u <= 1.0 for u in got)


def test_prediction_sets_the_same_entities_as_the_pipeline(trained_nlp):
    texts = [text for text, _ in TRAIN_DATA]
    piped = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in trained_nlp.pipe(texts)]
    predicted = [
        [(e.start, e.end, e.label_) for e in doc.ents]
        for doc, _ in predict_docs(trained_nlp, map(trained_nlp.make_doc, texts))
    ]
    assert predicted == piped
