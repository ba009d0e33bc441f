"""Pipelines saved by spacy-wnut 0.2/0.3 (spacy-transformers' encoder) in an environment without spacy-transformers:
they load and predict as before, their weights are read without running pickled code, and `migrate` saves
them in the 0.4 format."""

import json
import pickle
import subprocess
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from safetensors.torch import load as safetensors_load

from spacy_wnut.errors import ConfigError, InputError
from spacy_wnut.ml.hf_encoder import FORMAT, HFShim, encoder_model
from spacy_wnut.ml.legacy import LegacyEncoderWarning, spacy_transformers_installed

from ..util import ROOT, ents_of, wnut_command

DATA = ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def without_spacy_transformers():
    if spacy_transformers_installed():
        pytest.skip("spacy-transformers is installed here: its names are its own, not read by spacy-wnut")


def expected_of(name: str):
    expected = json.loads((DATA / f"{name}-entities.json").read_text(encoding="utf-8"))
    return expected, [[tuple(e) for e in doc] for doc in expected["entities"]]


@pytest.mark.parametrize("name", ["legacy-0.2.0", "legacy-0.3.0"])
def test_an_old_pipeline_loads_with_a_warning_and_predicts_the_same(name):
    expected, entities = expected_of(name)
    with pytest.warns(LegacyEncoderWarning, match="spacy wnut migrate OLD NEW"):
        nlp = spacy.load(DATA / name)
    assert ents_of(nlp.pipe(expected["texts"])) == entities


def test_an_old_mpnet_pipeline_keeps_its_scores_and_exact_layer_norm_eps():
    """0.3 kept `layer_norm_eps` as text in its cfg (spacy-transformers' JSON rounded it to 0.0); read from the
    msgpack'd config directly, it is exact without that workaround."""
    expected, _ = expected_of("legacy-0.3.0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacyEncoderWarning)
        nlp = spacy.load(DATA / "legacy-0.3.0")
    # 0.3's entity score was the mean probability of the entity's decoded tags (0.4 writes its probability):
    # computed from the token probabilities, it is the number 0.3 saved, to its six digits.
    pipe = nlp.get_pipe("wnut_ner")
    docs = list(nlp.pipe(expected["texts"]))
    probs = pipe.token_probs(pipe.subword_scores(docs)).probs
    offsets, scores = numpy.cumsum([0] + [len(doc) for doc in docs]), []
    for offset, doc in zip(offsets, docs):
        doc_scores = []
        for ent in doc.ents:
            tags = [
                pipe.scheme.tags.index(f"{'B' if i == ent.start else 'I'}-{ent.label_}")
                for i in range(ent.start, ent.end)
            ]
            doc_scores.append(round(float(numpy.mean(probs[offset + ent.start + numpy.arange(len(ent)), tags])), 6))
        scores.append(doc_scores)
    assert [len(doc) for doc in scores] == [len(doc) for doc in expected["scores"]]
    assert sum(scores, []) == pytest.approx(sum(expected["scores"], []), abs=2e-6)
    assert encoder_model(nlp.get_pipe("wnut_ner").model.get_ref("transformer")).config.layer_norm_eps == 1e-12


def test_migrate_writes_the_new_format_and_predicts_the_same(tmp_path):
    expected, entities = expected_of("legacy-0.3.0")
    out = tmp_path / "migrated"
    result = subprocess.run(wnut_command("migrate", DATA / "legacy-0.3.0", out), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "same entities and scores" in result.stdout
    config = (out / "config.cfg").read_text(encoding="utf-8")
    assert "spacy-transformers" not in config and '"spacy_wnut.HFEncoder.v1"' in config
    assert "layer_norm_eps" not in json.loads((out / "wnut_ner" / "cfg").read_text())
    (shim,) = [s for shims in srsly.msgpack_loads((out / "wnut_ner" / "model").read_bytes())["shims"] for s in shims]
    shim = srsly.msgpack_loads(shim)
    assert shim["format"] == FORMAT and set(shim) == {"format", "config", "weights", "tokenizer"}
    assert json.loads(shim["config"])["layer_norm_eps"] == 1e-12 and "tokenizer.json" in shim["tokenizer"]
    assert "embeddings.word_embeddings.weight" in safetensors_load(shim["weights"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LegacyEncoderWarning)  # nothing legacy is left to read
        nlp = spacy.load(out)
    assert ents_of(nlp.pipe(expected["texts"])) == entities


def test_migrate_refuses_a_new_pipeline_and_an_existing_output(model_dir, tmp_path):
    result = subprocess.run(wnut_command("migrate", model_dir, tmp_path / "out"), capture_output=True, text=True)
    assert result.returncode == 1 and "in the 0.4 format already" in result.stderr, result.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = subprocess.run(
        wnut_command("migrate", DATA / "legacy-0.3.0", tmp_path / "taken"), capture_output=True, text=True
    )
    assert result.returncode == 1 and "--overwrite" in result.stderr and "Traceback" not in result.stderr


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(_Payload.marker),))


def test_old_weights_holding_code_are_refused_not_run(tmp_path):
    """spacy-transformers saved weights with `torch.save` (a pickle); they are read with `weights_only=True`."""
    _Payload.marker = str(tmp_path / "ran")
    msg = {
        "config": {"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2},
        "state": pickle.dumps({"embeddings.word_embeddings.weight": _Payload()}),
        "tokenizer": {"kwargs": {"use_fast": True}},
        "_init_tokenizer_config": {},
        "_init_transformer_config": {},
    }
    with pytest.raises(InputError, match="cannot be read safely"):
        HFShim().from_bytes(srsly.msgpack_dumps(msg))
    assert not (tmp_path / "ran").exists()


def test_spacy_transformers_encoder_in_a_tagger_is_refused_with_what_to_do():
    from thinc.api import Model

    from spacy_wnut.ml.tagger import build_subword_tagger_v2

    foreign = Model("transformer", lambda model, X, is_train: (X, lambda d: d), layers=[Model("hf-pytorch", None)])
    with pytest.raises(ConfigError, match=r"spacy_wnut\.HFEncoder\.v1.*spacy wnut migrate"):
        build_subword_tagger_v2(foreign)
