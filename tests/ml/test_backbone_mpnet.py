"""MPNet (all-mpnet-base-v2's architecture: no token type ids, position ids counted from the padding
index + 1, `MPNetTokenizerFast`) through the main paths: `spacy train` with the shipped config,
saving and loading, every engine, the run-time pipeline, and export-hf -> `pipeline()` -> import-hf."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import spacy

from spacy_wnut.ml.hf_encoder import encoder_model

from ..util import TRAIN_DATA, ents_of, make_nlp, overfit, train_shipped_config

TEXTS = [text for text, _ in TRAIN_DATA] + ["TOM HANKS loves New York", "apple inc is watching game of thrones"]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]


@pytest.fixture(scope="module")
def mpnet_nlp(tiny_mpnet):
    """A tiny MPNet pipeline overfitted on TRAIN_DATA (no spaCy features, so it exports to HF; read-only)."""
    nlp = make_nlp(tiny_mpnet)
    overfit(nlp, steps=60)
    return nlp


@pytest.fixture(scope="module")
def mpnet_dir(mpnet_nlp, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mpnet-pipeline")
    mpnet_nlp.to_disk(path)
    return path


def test_mpnet_learns_the_training_entities(mpnet_nlp):
    encoder = encoder_model(mpnet_nlp.get_pipe("wnut_ner").model.get_ref("transformer"))
    assert type(encoder).__name__ == "MPNetModel"
    assert ents_of(mpnet_nlp.pipe(TEXTS[:4])) == GOLD


def test_mpnet_input_has_no_token_type_ids(mpnet_nlp):
    from spacy_wnut.ml.encoding import encode_for

    encoded = encode_for(mpnet_nlp.get_pipe("wnut_ner").model, [mpnet_nlp.make_doc(TEXTS[1])])
    assert encoded.token_type_ids is None
    assert set(encoded.torch_inputs()) == {"input_ids", "attention_mask"}


def test_mpnet_window_limit_leaves_out_the_two_offset_positions():
    from transformers import MPNetConfig

    from spacy_wnut.ml.encoding import max_subwords_of
    from spacy_wnut.ml.tokenization import NO_LIMIT

    # An imported checkpoint whose tokenizer sets no limit: the positions decide.
    tokenizer = SimpleNamespace(model_max_length=NO_LIMIT * 10)
    assert max_subwords_of(tokenizer, MPNetConfig(max_position_embeddings=514)) == 512


def test_a_doc_longer_than_the_encoder_is_cut_into_windows_mpnet_can_place(mpnet_nlp):
    from spacy_wnut.ml.encoding import encode_for

    model = mpnet_nlp.get_pipe("wnut_ner").model
    # Ten one-character pieces a word: 51 words fill 512 subwords with <s> and </s>, 52 do not fit.
    exact, longer = (" ".join(["abcdefghij"] * n) for n in (51, 52))
    assert encode_for(model, [mpnet_nlp.make_doc(exact)]).window_length == 512
    cut = encode_for(model, [mpnet_nlp.make_doc(longer)])
    assert cut.input_ids.shape[0] == 2 and cut.window_length <= 512
    docs = list(mpnet_nlp.pipe([exact, longer]))
    assert [len(doc) for doc in docs] == [51, 52]


def test_a_reloaded_mpnet_predicts_as_before_saving(mpnet_nlp, mpnet_dir):
    """Padded batches too: a reloaded MPNet whose `layer_norm_eps` (1e-12) came back as 0.0 gave NaN on them."""
    loaded = spacy.load(mpnet_dir)
    encoder = encoder_model(loaded.get_pipe("wnut_ner").model.get_ref("transformer"))
    assert encoder.config.layer_norm_eps == 1e-12
    assert ents_of(loaded.pipe(TEXTS)) == ents_of(mpnet_nlp.pipe(TEXTS))


def test_the_fp32_onnx_engine_gives_the_torch_engines_entities_on_mpnet(mpnet_nlp, mpnet_dir):
    from spacy_wnut.pipeline.engines import check_engine

    try:
        check_engine("onnx")
    except ImportError as err:
        pytest.skip(str(err))
    fast = spacy.load(mpnet_dir, config={"components": {"wnut_ner": {"engine": "onnx"}}})
    assert ents_of(fast.pipe(TEXTS)) == ents_of(mpnet_nlp.pipe(TEXTS))


@pytest.mark.parametrize("engine", ["onnx-int8", "torch-int8"])
def test_int8_engines_run_an_mpnet_pipeline(mpnet_nlp, mpnet_dir, engine):
    from spacy_wnut.pipeline.engines import check_engine

    try:
        check_engine(engine)
    except ImportError as err:
        pytest.skip(str(err))
    fast = spacy.load(mpnet_dir, config={"components": {"wnut_ner": {"engine": engine}}})
    found = ents_of(fast.pipe(TEXTS))
    assert len(found) == len(TEXTS)
    assert {label for doc in found for _, _, label in doc} <= set(mpnet_nlp.get_pipe("wnut_ner").labels)


def test_mpnet_runtime_pipeline_predicts_the_entities_of_its_source(mpnet_nlp):
    from spacy_wnut.tools.runtime_export import build_runtime

    runtime = build_runtime(mpnet_nlp)
    assert runtime.get_pipe("wnut_ner").is_runtime
    assert ents_of(runtime.pipe(TEXTS)) == ents_of(mpnet_nlp.pipe(TEXTS))


def test_int8_mpnet_runtime_pipeline_runs_its_int8_graph(mpnet_nlp):
    from spacy_wnut.tools.runtime_export import build_runtime, runtime_info

    runtime = build_runtime(mpnet_nlp, int8=True)
    assert runtime_info(runtime)["graph"] == "int8"
    assert len(ents_of(runtime.pipe(TEXTS))) == len(TEXTS)


def test_a_reloaded_mpnet_round_trips_through_a_hf_checkpoint_and_pipeline(mpnet_nlp, mpnet_dir, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from spacy_wnut.tools.hf_checkpoint import export_hf, from_hf

    export_hf(mpnet_dir, tmp_path / "hf")
    encoder_model = AutoModelForTokenClassification.from_pretrained(tmp_path / "hf")
    assert type(encoder_model).__name__ == "MPNetForTokenClassification"
    assert encoder_model.config.layer_norm_eps == 1e-12
    ner = pipeline(
        "token-classification",
        model=encoder_model,
        tokenizer=AutoTokenizer.from_pretrained(tmp_path / "hf"),
        aggregation_strategy="first",
    )
    # One batch: rows of different lengths, so padding goes through the encoder.
    found = [{(e["start"], e["end"], e["entity_group"]) for e in doc} for doc in ner(TEXTS[:4], batch_size=4)]
    assert found == [set(gold) for gold in GOLD]
    imported = from_hf(tmp_path / "hf")
    assert ents_of(imported.pipe(TEXTS)) == ents_of(mpnet_nlp.pipe(TEXTS))


def test_shipped_config_trains_an_mpnet_backbone(tiny_mpnet, tmp_path):
    """`spacy train configs/distilbert.cfg` as shipped (frozen embeddings, casing features, the subword batcher)."""
    nlp = spacy.load(train_shipped_config(tiny_mpnet, tmp_path))
    encoder = encoder_model(nlp.get_pipe("wnut_ner").model.get_ref("transformer"))
    assert type(encoder).__name__ == "MPNetModel"
    assert not encoder.get_input_embeddings().weight.requires_grad
    assert len(list(nlp.pipe(TEXTS))) == len(TEXTS)
