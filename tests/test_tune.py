"""`entity_bias` decoding and its tuning on a dev set."""

import subprocess

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_wnut.pipeline.decode import decode_entities
from spacy_wnut.training.tune import BiasScore, best_bias, score_biases

from util import TRAIN_DATA, ents_of, make_nlp, train_examples, wnut_command

TEXTS = [text for text, _ in TRAIN_DATA]


def with_bias(trained_nlp, tiny_transformer, bias):
    nlp = make_nlp(tiny_transformer, entity_bias=bias)
    nlp.from_bytes(trained_nlp.to_bytes())
    return nlp


def entity_tokens(docs):
    return sum(len(e) for doc in docs for e in doc.ents)


def test_zero_bias_is_the_default_decoding(trained_nlp, tiny_transformer):
    assert ents_of(with_bias(trained_nlp, tiny_transformer, 0.0).pipe(TEXTS)) == ents_of(trained_nlp.pipe(TEXTS))


def test_bias_moves_the_precision_recall_balance(trained_nlp, tiny_transformer):
    texts = ["watching york of apple and tom games", "the new thrones hanks inc"]
    low = list(with_bias(trained_nlp, tiny_transformer, -30.0).pipe(texts))
    high = list(with_bias(trained_nlp, tiny_transformer, 30.0).pipe(texts))
    assert entity_tokens(low) == 0
    assert entity_tokens(high) == sum(len(doc) for doc in high)


@settings(max_examples=25, deadline=None)
@given(biases=st.lists(st.floats(-8, 8), min_size=2, max_size=2))
def test_entity_tokens_never_decrease_as_the_bias_grows(trained_nlp, biases):
    """Viterbi maximises score + bias * (entity tokens): the argmax's count is monotone in the bias."""
    ner = trained_nlp.get_pipe("wnut_ner")
    docs = [trained_nlp.make_doc(t) for t in TEXTS + ["york apple hanks game inc of new"]]
    probs = ner.token_probs(ner.subword_scores(docs))
    low, high = sorted(biases)
    spans = [decode_entities(probs, ner.scheme, ner.decoder, b) for b in (low, high)]
    counts = [int((s.ends - s.starts).sum()) for s in spans]
    assert counts[0] <= counts[1]


def test_score_biases_matches_the_pipeline_at_each_value(trained_nlp, tiny_transformer):
    examples = train_examples(trained_nlp) + [
        Example.from_dict(trained_nlp.make_doc("tom thrones apple"), {"entities": [(0, 3, "person")]})
    ]
    scores = score_biases(trained_nlp, examples, [0.0, 3.0])
    for score in scores:
        nlp = with_bias(trained_nlp, tiny_transformer, score.bias)
        expected = nlp.evaluate([Example(nlp.make_doc(eg.text), eg.reference) for eg in examples])
        assert (score.p, score.r, score.f) == pytest.approx(
            (expected["ents_p"], expected["ents_r"], expected["ents_f"])
        )


def test_best_bias_prefers_the_smallest_bias_among_ties():
    scores = [BiasScore(0.0, 0.5, 0.5, 0.5), BiasScore(1.0, 0.4, 0.7, 0.6), BiasScore(2.0, 0.3, 0.9, 0.6)]
    assert best_bias(scores).bias == 1.0
    with pytest.raises(ValueError, match="grid is empty"):
        best_bias([])


def test_score_biases_rejects_other_components(trained_nlp):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer", name="wnut_ner")
    with pytest.raises(ValueError, match="not a wnut_ner component"):
        score_biases(nlp, [], [0.0])


def test_tune_bias_cli_writes_a_pipeline_with_the_chosen_bias(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp)]).to_disk(tmp_path / "dev.spacy")
    out = subprocess.run(
        wnut_command(
            "tune-bias",
            str(tmp_path / "model"),
            str(tmp_path / "dev.spacy"),
            str(tmp_path / "tuned"),
            "--grid",
            "0,1,-40",
        ),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "entity_bias = 0" in out.stdout  # the overfitted model is perfect at 0; ties go to 0
    tuned = spacy.load(tmp_path / "tuned")
    assert tuned.config["components"]["wnut_ner"]["entity_bias"] == 0.0
    assert ents_of(tuned.pipe(TEXTS)) == ents_of(trained_nlp.pipe(TEXTS))


def test_tune_bias_cli_reports_a_missing_dev_file(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    out = subprocess.run(
        wnut_command("tune-bias", str(tmp_path / "model"), str(tmp_path / "nope.spacy"), str(tmp_path / "tuned")),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "nope.spacy" in out.stderr
