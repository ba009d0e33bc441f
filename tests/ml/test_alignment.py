"""Subword rows <-> tokens: aggregation and gold projection on random alignments."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from thinc.types import Ragged

from spacy_wnut.ml.alignment import TokenRows, aggregate, project_gold

WINDOW = 6


@st.composite
def alignments(draw):
    """Random token -> rows alignments in up to 3 windows of WINDOW rows; tokens may get none."""
    n_windows = draw(st.integers(1, 3))
    n_rows = n_windows * WINDOW
    per_token = draw(st.lists(st.sets(st.integers(0, n_rows - 1), max_size=3), min_size=1, max_size=8))
    lengths = numpy.array([len(rows) for rows in per_token], dtype="i")
    data = numpy.array([r for rows in per_token for r in sorted(rows)], dtype="i")
    probs = draw(st.lists(st.floats(0.01, 1.0), min_size=n_rows * 3, max_size=n_rows * 3))
    probs = numpy.array(probs, dtype="f").reshape(n_rows, 3)
    return per_token, Ragged(data, lengths), probs / probs.sum(axis=1, keepdims=True)


@settings(max_examples=200, deadline=None)
@given(alignments(), st.sampled_from(["first", "average", "max"]))
def test_every_token_with_rows_gets_a_distribution(example, method):
    per_token, align, probs = example
    out, has_rows = aggregate(probs, TokenRows.from_ragged(align), method, WINDOW)
    assert out.shape == (len(per_token), 3)
    assert list(has_rows) == [bool(rows) for rows in per_token]
    assert numpy.allclose(out[has_rows].sum(axis=1), 1.0, atol=1e-5)
    assert (out[~has_rows] == 0).all()


@settings(max_examples=200, deadline=None)
@given(alignments())
def test_aggregations_match_their_definitions(example):
    per_token, align, probs = example
    pairs = TokenRows.from_ragged(align)
    first, _ = aggregate(probs, pairs, "first", WINDOW)
    average, _ = aggregate(probs, pairs, "average", WINDOW)
    best, _ = aggregate(probs, pairs, "max", WINDOW)
    for i, rows in enumerate(per_token):
        if not rows:
            continue
        rows = sorted(rows)
        firsts = [min(r for r in rows if r // WINDOW == w) for w in sorted({r // WINDOW for r in rows})]
        assert numpy.allclose(first[i], probs[firsts].mean(axis=0), atol=1e-6)
        assert numpy.allclose(average[i], probs[rows].mean(axis=0), atol=1e-6)
        assert best[i].max() == pytest.approx(max(probs[r].max() for r in rows))


@settings(max_examples=200, deadline=None)
@given(alignments(), st.sampled_from(["first", "all"]))
def test_gold_lands_only_on_aligned_rows(example, method):
    per_token, align, probs = example
    gold = numpy.arange(len(per_token), dtype="i") % 3
    row_gold = project_gold(gold, TokenRows.from_ragged(align), method, probs.shape[0], WINDOW)
    aligned = {r for rows in per_token for r in rows}
    for row, tag in enumerate(row_gold):
        if row not in aligned:
            assert tag == -1
        else:
            owners = [i for i, rows in enumerate(per_token) if row in rows]
            if method == "all":
                assert tag == gold[owners[0]]
            else:
                assert tag in (-1, *[gold[i] for i in owners])
    if method == "first":
        firsts = [{min(r for r in rows if r // WINDOW == w) for w in {r // WINDOW for r in rows}} for rows in per_token]
        for row in set().union(*firsts):
            owner = min(i for i, rows in enumerate(firsts) if row in rows)
            assert row_gold[row] == gold[owner]


def test_unknown_aggregation_is_an_error():
    align = Ragged(numpy.zeros(0, "i"), numpy.zeros(1, "i"))
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate(numpy.zeros((1, 3), "f"), TokenRows.from_ragged(align), "median", WINDOW)


@st.composite
def texts_and_windows(draw):
    """Texts of words from the tiny vocabulary and odd characters, joined by varied whitespace."""
    odd = ["@paul", "#tbt", "http://t.co/x", "\u200b", "é", "!!", "x2"]
    words = st.sampled_from(["new", "york", "apple", "inc", *odd])
    tokens = draw(st.lists(words, min_size=1, max_size=14))
    gaps = draw(st.lists(st.sampled_from(["", " ", "  ", "\t", " \n "]), min_size=len(tokens), max_size=len(tokens)))
    window = draw(st.integers(1, 8))
    stride = draw(st.integers(max(1, window // 2), window))
    return "".join(t + g for t, g in zip(tokens, gaps)), window, stride


def reference_strided_spans(doc, window: int, stride: int):
    """spacy-transformers 1.4's `get_strided_spans`, written out (0.3 pipelines were trained on these windows)."""
    spans, start = [], 0
    for _ in range(len(doc) // stride):
        spans.append(doc[start : start + window])
        if start + window >= len(doc):
            break
        start += stride
    else:
        if start < len(doc):
            spans.append(doc[start:])
    return spans


def reference_alignment(spans, offsets):
    """spacy-transformers 1.4's `get_alignment_via_offset_mapping`, written out in plain Python: each character
    of a token, and the one after it, belongs to that token (a later token takes a shared one); a subword is
    aligned to the tokens of every character it covers."""
    positions = {}
    for span in spans:
        for token in span.doc:
            positions.setdefault((id(span.doc), token.i), len(positions))
    alignment = [set() for _ in positions]
    width = offsets.shape[1]
    for w, span in enumerate(spans):
        owner = [-1] * (len(span.text) + 1)
        for token in span:
            for c in range(token.idx - span.start_char, token.idx - span.start_char + len(token) + 1):
                owner[c] = token.i - span.start
        for j, (start, end) in enumerate(offsets[w].tolist()):
            for c in range(start, end):
                if 0 <= c < len(owner) and owner[c] >= 0:
                    alignment[positions[(id(span.doc), span.start + owner[c])]].add(w * width + j)
    return [len(a) for a in alignment], [r for a in alignment for r in sorted(a)]


@settings(max_examples=150, deadline=None)
@given(st.lists(texts_and_windows(), min_size=1, max_size=3))
def test_offset_alignment_and_windows_match_spacy_transformers(tiny_tokenizer, batch):
    """Pipelines of spacy-wnut 0.3 were trained with spacy-transformers' windows and alignment: ours must be those."""
    import spacy

    from spacy_wnut.ml.alignment import align_offsets
    from spacy_wnut.ml.encoding import _padded, doc_lengths
    from spacy_wnut.ml.windows import strided_spans

    nlp = spacy.blank("en")
    docs = [nlp.make_doc(text) for text, _, _ in batch]
    nested = []
    for doc, (_, window, stride) in zip(docs, batch):
        nested += strided_spans([doc], window, stride)
        assert [(s.start, s.end) for s in nested[-1]] == [
            (s.start, s.end) for s in reference_strided_spans(doc, window, stride)
        ]
    windows = [(i, span) for i, spans in enumerate(nested) for span in spans]
    encoded = tiny_tokenizer.encode([span.text for _, span in windows])
    width = max(len(ids) for ids in encoded["input_ids"])
    offsets = _padded(encoded["offset_mapping"], width, (0, 0), "int64")
    ours = align_offsets(windows, offsets, doc_lengths(docs))
    lengths, rows = reference_alignment([span for _, span in windows], offsets)
    assert ours.lengths.tolist() == lengths
    assert ours.dataXd.tolist() == rows
