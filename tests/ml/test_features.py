"""Token features beside the encoder (`spacy_wnut.TokenFeatures.v1`) and casing classes:
they learn, round-trip, run in every engine and in tune-bias, and are refused by HF export."""

import numpy
import pytest
import spacy
from thinc.api import NumpyOps, Ragged

from spacy_wnut.ml.features import TokenRowMap, token_casings

from ..util import TRAIN_DATA, ents_of, make_nlp, overfit

TEXTS = [text for text, _ in TRAIN_DATA]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]
FEATURES = {
    "@architectures": "spacy_wnut.TokenFeatures.v1",
    "width": 16,
    "rows": [200, 100, 100, 100],
    "learn_rate_scale": 5.0,
}


def features_nlp(tiny_transformer, **features):
    model = {
        "transformer": {"name": str(tiny_transformer)},
        "casing_features": True,
        "token_features": {**FEATURES, **features},
    }
    return make_nlp(tiny_transformer, model=model)


@pytest.fixture(scope="module")
def feature_nlp(tiny_transformer):
    nlp = features_nlp(tiny_transformer)
    overfit(nlp)
    return nlp


def test_token_features_learn_the_data_and_round_trip(feature_nlp, tmp_path):
    assert ents_of(feature_nlp.pipe(TEXTS)) == GOLD
    head = feature_nlp.get_pipe("wnut_ner").model.get_ref("output_layer")
    assert head.get_dim("nI") == 32 + 16  # encoder rows joined to the token features
    feature_nlp.to_disk(tmp_path)
    more = TEXTS + ["TOM HANKS in NEW YORK", "apple Inc"]
    assert ents_of(spacy.load(tmp_path).pipe(more)) == ents_of(feature_nlp.pipe(more))
    fresh = features_nlp(tmp_path / "wnut_ner")  # any transformer name: from_bytes brings the weights
    fresh.from_bytes(feature_nlp.to_bytes())
    assert ents_of(fresh.pipe(more)) == ents_of(feature_nlp.pipe(more))


def test_feature_layers_learn_at_their_scaled_rate(tiny_transformer):
    from thinc.api import Adam

    nlp = features_nlp(tiny_transformer, learn_rate_scale=10.0)
    overfit(nlp, steps=1)
    model = nlp.get_pipe("wnut_ner").model
    features = model.get_ref("token_features")
    embed = next(node for node in features.walk() if node.name.startswith("hashembed"))
    head = model.get_ref("output_layer")
    before = {"embed": embed.get_param("E").copy(), "head": head.get_param("W").copy()}
    optimizer = Adam(1e-3)
    from ..util import train_examples

    nlp.update(train_examples(nlp), sgd=optimizer)
    moved = {
        "embed": numpy.abs(embed.get_param("E") - before["embed"]).max(),
        "head": numpy.abs(head.get_param("W") - before["head"]).max(),
    }
    # Adam's first step moves every weight with a gradient by about the learning rate.
    assert moved["head"] == pytest.approx(1e-3, rel=0.05)
    assert moved["embed"] == pytest.approx(1e-2, rel=0.05)


def test_token_features_run_in_every_engine(feature_nlp, tmp_path):
    from spacy_wnut.pipeline.engines import check_engine

    feature_nlp.to_disk(tmp_path / "model")
    expected = ents_of(feature_nlp.pipe(TEXTS))
    for engine in ("onnx", "onnx-int8", "torch-int8"):
        try:
            check_engine(engine)
        except ImportError:
            continue
        nlp = spacy.load(tmp_path / "model", config={"components": {"wnut_ner": {"engine": engine}}})
        assert ents_of(nlp.pipe(TEXTS)) == expected, engine


def test_tune_bias_decodes_with_token_features(feature_nlp):
    from spacy_wnut.training.tune import score_biases

    from ..util import train_examples

    scores = score_biases(feature_nlp, train_examples(feature_nlp), [0.0])
    assert scores[0].f == 1.0


def test_token_features_cannot_be_exported_to_hf(feature_nlp, tmp_path):
    from spacy_wnut.tools.hf_checkpoint import export_hf

    with pytest.raises(ValueError, match="spaCy token features.*train with them off to export"):
        export_hf(feature_nlp, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize(
    "setting,message", [({"width": 0}, "width >= 1"), ({"learn_rate_scale": 0}, "learn_rate_scale must be positive")]
)
def test_bad_feature_settings_are_named(tiny_transformer, setting, message):
    with pytest.raises(ValueError, match=message):
        features_nlp(tiny_transformer, **setting)


def test_rows_take_the_features_of_their_token_and_give_back_gradients():
    # tokens 0..2; rows 0 and 5 are special tokens or padding; token 1 has two rows
    align = Ragged(numpy.array([1, 2, 3, 4], dtype="i"), numpy.array([1, 2, 1], dtype="i"))
    rows = TokenRowMap.from_align(align, 6)
    assert rows.token_of_row.tolist() == [-1, 0, 1, 1, 2, -1]
    ops = NumpyOps()
    values = numpy.arange(6, dtype="f").reshape(3, 2)
    per_row = rows.from_tokens(ops, values)
    assert per_row.tolist() == [[0, 0], [0, 1], [2, 3], [2, 3], [4, 5], [0, 0]]
    assert rows.to_tokens(ops, numpy.ones((6, 2), dtype="f"), 3).tolist() == [[1, 1], [2, 2], [1, 1]]


def test_casing_classes():
    doc = spacy.blank("en")("I love USA and iPhone 123 Tom")
    assert token_casings([doc, spacy.blank("en")("")]).tolist() == [1, 3, 2, 3, 4, 4, 1]
