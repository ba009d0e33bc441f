"""Constrained Viterbi and BIO -> spans: checked against brute force on random inputs."""

import itertools

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spacy_wnut.pipeline.decode import tags_to_spans, viterbi
from spacy_wnut.pipeline.schemes import TagScheme

SCHEME = TagScheme(("person", "creative-work"))


def is_valid_bio(tags, allowed):
    return all(allowed[prev, cur] for prev, cur in zip([0] + list(tags[:-1]), tags))


@st.composite
def batches(draw):
    lengths = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
    n = sum(lengths)
    log_probs = draw(arrays("f4", (n, SCHEME.n_tags), elements=st.floats(-5, 0, width=32)))
    return log_probs, numpy.array(lengths)


def test_scheme_splits_labels_with_hyphens():
    assert SCHEME.tags == ["O", "B-person", "I-person", "B-creative-work", "I-creative-work"]


def test_i_tag_only_after_its_own_b_or_i():
    allowed = SCHEME.allowed_transitions()
    assert allowed[1, 2] and allowed[2, 2] and not allowed[0, 2] and not allowed[3, 2]


@settings(max_examples=150, deadline=None)
@given(batches())
def test_viterbi_is_the_best_valid_sequence(batch):
    log_probs, lengths = batch
    allowed = SCHEME.allowed_transitions()
    tags = viterbi(log_probs, lengths, allowed)
    assert len(tags) == lengths.sum()
    start = 0
    for length in lengths:
        doc_lp, doc_tags = log_probs[start : start + length], tags[start : start + length]
        start += length
        assert is_valid_bio(doc_tags, allowed)
        best = max(
            (
                sum(doc_lp[i, t] for i, t in enumerate(seq))
                for seq in itertools.product(range(SCHEME.n_tags), repeat=length)
                if is_valid_bio(seq, allowed)
            ),
            default=0.0,
        )
        got = sum(doc_lp[i, t] for i, t in enumerate(doc_tags))
        assert abs(got - best) < 1e-3


@settings(max_examples=150, deadline=None)
@given(batches())
def test_spans_cover_exactly_the_entity_tags(batch):
    log_probs, lengths = batch
    tags = viterbi(log_probs, lengths, SCHEME.allowed_transitions())
    scores = numpy.exp(numpy.take_along_axis(log_probs, tags[:, None], axis=1)[:, 0])
    spans = tags_to_spans(tags, scores)
    covered = numpy.zeros(len(tags), dtype=bool)
    for s, e, label, score in zip(spans.starts, spans.ends, spans.label_ids, spans.scores):
        assert s < e and not covered[s:e].any()
        covered[s:e] = True
        assert tags[s] == 1 + 2 * label and all(tags[s + 1 : e] == 2 + 2 * label)
        assert abs(score - scores[s:e].mean()) < 1e-5
        doc_starts = numpy.cumsum(lengths)[:-1]
        assert not any(s < b < e for b in doc_starts), "entity crosses a doc boundary"
    assert (covered == (tags > 0)).all()


def test_empty_batch_decodes_to_nothing():
    tags = viterbi(numpy.zeros((0, 5), "f"), numpy.array([0, 0]), SCHEME.allowed_transitions())
    assert len(tags) == 0 and len(tags_to_spans(tags, numpy.zeros(0, "f")).starts) == 0


def hf_pipeline_groups(tags):
    """The transformers pipeline's `group_entities` on one doc's tag names, as (start, end, label)."""
    groups = []
    for i, tag in enumerate(tags):
        bi, label = (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else ("I", tag)
        if groups and groups[-1][2] == label and bi != "B":
            groups[-1][1] = i + 1
        else:
            groups.append([i, i + 1, label])
    return [tuple(g) for g in groups if g[2] != "O"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, SCHEME.n_tags - 1), max_size=6), min_size=1, max_size=4))
def test_any_tags_group_as_the_hf_pipeline_groups_them(docs):
    """With invalid I- starts (argmax tags), spans are the pipeline's groups, doc by doc."""
    lengths = numpy.array([len(doc) for doc in docs])
    tags = numpy.array([t for doc in docs for t in doc], dtype="i")
    spans = tags_to_spans(tags, numpy.ones(len(tags), "f"), lengths)
    expected, offset = [], 0
    for doc in docs:
        names = [SCHEME.tags[t] for t in doc]
        expected += [(offset + s, offset + e, label) for s, e, label in hf_pipeline_groups(names)]
        offset += len(doc)
    got = [(int(s), int(e), SCHEME.labels[i]) for s, e, i in zip(spans.starts, spans.ends, spans.label_ids)]
    assert got == expected
