"""`entity_bias` decoding and its tuning on a dev set."""

import subprocess

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_wnut.errors import ConfigError
from spacy_wnut.pipeline.decode import decode_entities
from spacy_wnut.training.tune import BiasScore, best_bias, score_biases

from ..util import TRAIN_DATA, ents_of, make_nlp, save_renamed, train_examples, wnut_command

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
    with pytest.raises(ConfigError, match="--component wnut_ner: not a wnut_ner component"):
        score_biases(nlp, [], [0.0], name="wnut_ner")
    with pytest.raises(ConfigError, match="the pipeline has no wnut_ner component"):
        score_biases(nlp, [], [0.0])


@pytest.mark.parametrize(
    "text,message",
    [("", "grid is empty"), (" , ", "grid is empty"), ("1e308", "within ±1000"), ("0,nan", "finite"), ("a", "comma")],
)
def test_bad_grid_option_is_refused_naming_it(text, message):
    from spacy_wnut.training.tune import parse_grid

    with pytest.raises(ConfigError, match=f"--grid: .*{message}"):
        parse_grid(text)


def test_an_empty_grid_option_is_refused_not_replaced_by_the_default(model_dir, tmp_path):
    result = subprocess.run(
        wnut_command("tune-bias", model_dir, tmp_path / "dev.spacy", tmp_path / "out", "--grid", ""),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "--grid" in result.stderr and "grid is empty" in result.stderr and "Traceback" not in result.stderr


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


@pytest.fixture
def renamed_model(trained_nlp, tmp_path):
    """The trained pipeline with its component named `ner`, and a dev set."""
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp)]).to_disk(tmp_path / "dev.spacy")
    return save_renamed(trained_nlp, tmp_path / "model", "ner"), tmp_path / "dev.spacy"


def test_tune_bias_finds_the_component_by_factory_and_names_a_wrong_one(renamed_model, tmp_path):
    model, dev = renamed_model
    found = subprocess.run(
        wnut_command("tune-bias", model, dev, tmp_path / "tuned", "--grid", "0,1"), capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    tuned = spacy.load(tmp_path / "tuned").config["components"]["ner"]
    assert tuned["entity_bias"] == 0.0
    # the dev set is the training set, every entity right: nothing to calibrate, the temperature stays 1
    assert tuned["temperature"] == 1.0 and "temperature = 1.000 (dev ECE of the entity probabilities" in found.stdout
    wrong = subprocess.run(
        wnut_command("tune-bias", model, dev, tmp_path / "other", "--grid", "0", "--component", "wnut_ner"),
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1 and "--component wnut_ner: the pipeline has no such component" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "other").exists()


def test_tune_bias_replaces_an_output_only_with_overwrite_and_never_a_file(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp)]).to_disk(tmp_path / "dev.spacy")
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "keep.txt").write_text("mine")
    (tmp_path / "plain").write_text("a file")
    args = [tmp_path / "model", tmp_path / "dev.spacy"]
    existing = subprocess.run(
        wnut_command("tune-bias", *args, tmp_path / "tuned", "--grid", "0"), capture_output=True, text=True
    )
    assert existing.returncode == 1 and "already exists; pass --overwrite" in existing.stderr
    assert (tmp_path / "tuned" / "keep.txt").read_text() == "mine"
    a_file = subprocess.run(
        wnut_command("tune-bias", *args, tmp_path / "plain", "--grid", "0", "--overwrite"),
        capture_output=True,
        text=True,
    )
    assert a_file.returncode == 1 and "plain: is a file, and this command writes a directory" in a_file.stderr
    assert (tmp_path / "plain").read_text() == "a file"


def test_tune_bias_warns_about_gold_labels_the_model_cannot_predict(trained_nlp, tmp_path):
    import warnings

    from spacy_wnut.data.corpus import UnknownLabelsWarning
    from spacy_wnut.training.tune import tune_entity_bias

    doc = trained_nlp.make_doc("apple inc rocks")
    doc.ents = [doc.char_span(0, 9, label="ORG")]
    DocBin(docs=[doc]).to_disk(tmp_path / "dev.spacy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune_entity_bias(trained_nlp, tmp_path / "dev.spacy", [0.0])
    (warning,) = [w for w in caught if issubclass(w.category, UnknownLabelsWarning)]
    assert "gold entity labels the pipeline does not predict: ORG" in str(warning.message)
