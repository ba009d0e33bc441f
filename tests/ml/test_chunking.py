"""Engines on length-sorted chunks of a bounded number of padded subwords: the same rows as one call."""

import numpy
import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import Doc
from thinc.api import Ragged

from spacy_wnut.ml.chunking import length_chunks, run_in_chunks
from spacy_wnut.ml.encoding import EncodedBatch
from spacy_wnut.pipeline.engines import EngineRunner
from spacy_wnut.tools.runtime_export import build_runtime

from ..util import TRAIN_DATA

TEXTS = [text for text, _ in TRAIN_DATA] + [
    "Tom Hanks loves New York",
    "",
    "apple inc and tom hanks watching game of thrones in new york " * 12,
    "NEW YORK!!! @tom #hanks http://t.co/xyz",
]


@given(st.lists(st.integers(1, 300), min_size=1, max_size=80), st.integers(1, 2000))
def test_length_chunks_partition_the_windows_within_the_budget(lengths, budget):
    lengths = numpy.array(lengths)
    chunks = length_chunks(lengths, budget)
    assert sorted(numpy.concatenate(chunks).tolist()) == list(range(len(lengths)))
    for chunk in chunks:
        cost = len(chunk) * lengths[chunk].max()
        assert cost <= budget or len(chunk) == 1
        assert (numpy.diff(lengths[chunk]) >= 0).all()
    maxima = [lengths[chunk].max() for chunk in chunks]
    assert maxima == sorted(maxima)


def _batch(lengths, width):
    ids = numpy.zeros((len(lengths), width), dtype="int64")
    for i, n in enumerate(lengths):
        ids[i, :n] = numpy.arange(1, n + 1) + 1000 * i
    mask = (ids > 0).astype("int64")
    return EncodedBatch(ids, mask, None, Ragged(numpy.zeros(0, "i"), numpy.zeros(0, "i")), numpy.zeros(0, "i"), [])


@given(st.lists(st.integers(2, 40), min_size=1, max_size=30), st.integers(1, 200))
def test_run_in_chunks_lays_rows_out_as_one_call(lengths, budget):
    batch = _batch(lengths, max(lengths) + 3)
    calls = []

    def engine(encoded):
        calls.append(encoded.input_ids.shape)
        rows = encoded.input_ids * encoded.attention_mask
        return numpy.stack([rows, -rows], axis=-1).reshape(-1, 2).astype("float32")

    expected = engine(batch)
    calls.clear()
    numpy.testing.assert_array_equal(run_in_chunks(engine, batch, budget), expected)
    assert all(n == 1 or n * width <= budget for n, width in calls)


def test_a_batch_that_fits_is_one_call():
    batch = _batch([3, 5], 6)
    calls = []
    run_in_chunks(lambda encoded: calls.append(1) or numpy.zeros((12, 2)), batch, 12)
    run_in_chunks(lambda encoded: calls.append(1) or numpy.zeros((12, 2)), batch, None)
    assert len(calls) == 2


def _assert_token_rows_close(chunked, whole):
    """The rows of real subwords agree (padded rows are zeros in a chunked batch, read by nothing)."""
    rows = whole.align.dataXd.ravel()
    assert len(rows)
    numpy.testing.assert_allclose(chunked.scores[rows], whole.scores[rows], atol=1e-5)


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_chunked_engines_score_as_one_call(trained_nlp, engine):
    model = trained_nlp.get_pipe("wnut_ner").model
    docs = [trained_nlp.make_doc(text) for text in TEXTS if text]
    whole = EngineRunner(engine).scores(model, docs)
    chunked = EngineRunner(engine, batch_subwords=16).scores(model, docs)
    numpy.testing.assert_array_equal(chunked.align.dataXd, whole.align.dataXd)
    _assert_token_rows_close(chunked, whole)


def test_runtime_pipeline_chunks_as_configured(trained_nlp):
    runtime = build_runtime(trained_nlp)
    ner = runtime.get_pipe("wnut_ner")
    docs = [runtime.make_doc(text) for text in TEXTS if text]
    ner.engine_runner.batch_subwords = None
    whole = ner.engine_runner.scores(ner.model, docs)
    ner.engine_runner.batch_subwords = 16
    chunked = ner.engine_runner.scores(ner.model, docs)
    _assert_token_rows_close(chunked, whole)


def test_chunked_pipeline_predicts_the_same_entities(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path)
    ents = []
    for setting in (None, 16):
        nlp = spacy.load(tmp_path, config={"components": {"wnut_ner": {"batch_subwords": setting}}})
        assert nlp.get_pipe("wnut_ner").engine_runner.batch_subwords == setting
        docs = list(nlp.pipe([Doc(nlp.vocab, words=text.split()) for text in TEXTS], batch_size=8))
        ents.append([[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs])
    assert ents[0] == ents[1] and any(ents[0])
