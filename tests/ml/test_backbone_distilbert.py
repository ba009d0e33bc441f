"""The default backbone's architecture (DistilBERT: no token type ids, its own module names,
`DistilBertTokenizerFast`) through the main paths: `spacy train` with the shipped config, every
engine, and export-hf -> `pipeline()` -> import-hf."""

import pytest
import spacy

from spacy_wnut.ml.hf_encoder import encoder_model, encoder_tokenizer

from ..util import TRAIN_DATA, ents_of, make_nlp, overfit, train_shipped_config

TEXTS = [text for text, _ in TRAIN_DATA] + ["TOM HANKS loves New York", "apple inc is watching game of thrones"]


@pytest.fixture(scope="module")
def trained_with_shipped_config(tiny_distilbert, tmp_path_factory):
    """`spacy train configs/distilbert.cfg` as shipped (frozen embeddings, casing features), a few steps."""
    return train_shipped_config(tiny_distilbert, tmp_path_factory.mktemp("distilbert-train"))


def test_shipped_config_trains_a_distilbert_backbone(trained_with_shipped_config, tiny_distilbert):
    nlp = spacy.load(trained_with_shipped_config)
    model = nlp.get_pipe("wnut_ner").model
    encoder = encoder_model(model.get_ref("transformer"))
    assert type(encoder).__name__ == "DistilBertModel"
    assert not encoder.get_input_embeddings().weight.requires_grad
    assert "token_type_ids" not in encoder_tokenizer(model.get_ref("transformer")).model_input_names
    assert nlp.meta["spacy_wnut_training"]["step"] in (0, 6, 12)
    docs = list(nlp.pipe(TEXTS))
    assert len(docs) == len(TEXTS)


@pytest.mark.parametrize("engine", ["onnx", "onnx-int8", "torch-int8"])
def test_every_engine_runs_a_distilbert_pipeline(tiny_distilbert, tmp_path, engine):
    from spacy_wnut.pipeline.engines import check_engine

    try:
        check_engine(engine)
    except ImportError as err:
        pytest.skip(str(err))
    nlp = make_nlp(tiny_distilbert, model={"casing_features": True, "transformer": {"name": str(tiny_distilbert)}})
    overfit(nlp, steps=60)
    expected = ents_of(nlp.pipe(TEXTS))
    assert expected[:4] == [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]
    nlp.to_disk(tmp_path / "model")
    fast = spacy.load(tmp_path / "model", config={"components": {"wnut_ner": {"engine": engine}}})
    assert ents_of(fast.pipe(TEXTS)) == expected


def test_distilbert_round_trips_through_a_hf_checkpoint_and_pipeline(tiny_distilbert, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from spacy_wnut.tools.hf_checkpoint import export_hf, from_hf

    nlp = make_nlp(tiny_distilbert)
    overfit(nlp, steps=60)
    export_hf(nlp, tmp_path / "hf")
    encoder_model = AutoModelForTokenClassification.from_pretrained(tmp_path / "hf")
    assert type(encoder_model).__name__ == "DistilBertForTokenClassification"
    ner = pipeline(
        "token-classification",
        model=encoder_model,
        tokenizer=AutoTokenizer.from_pretrained(tmp_path / "hf"),
        aggregation_strategy="first",
    )
    found = {(e["start"], e["end"], e["entity_group"]) for e in ner("Tom Hanks is watching Game of Thrones")}
    assert found == {(0, 9, "person"), (22, 37, "creative-work")}
    imported = from_hf(tmp_path / "hf")
    assert ents_of(imported.pipe(TEXTS)) == ents_of(nlp.pipe(TEXTS))
