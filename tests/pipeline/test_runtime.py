"""The run-time pipeline (`spacy_wnut.OnnxTagger.v1`): exported from a trained one, it predicts the same
entities through ONNX Runtime and `tokenizers`, round-trips through disk and bytes, and refuses training."""

import subprocess

import pytest
import spacy
from spacy.training import Example

from spacy_wnut.errors import ConfigError
from spacy_wnut.tools.runtime_export import build_runtime, export_runtime

from ..util import TRAIN_DATA, ents_of, make_nlp, overfit, wnut_command

TEXTS = [text for text, _ in TRAIN_DATA] + [
    "Tom Hanks loves New York",
    "",
    "   ",
    "apple inc and tom hanks watching game of thrones in new york " * 12,
    "NEW YORK!!! @tom #hanks http://t.co/xyz \u200bapple\ufeff",
]


@pytest.fixture(scope="module")
def runtime_nlp(trained_nlp):
    return build_runtime(trained_nlp)


@pytest.fixture(scope="module")
def featured_nlp(tiny_transformer):
    """A tiny pipeline with casing and token features, as the shipped config trains."""
    features = {"@architectures": "spacy_wnut.TokenFeatures.v1", "width": 16}
    model = {"transformer": {"name": str(tiny_transformer)}, "casing_features": True, "token_features": features}
    nlp = make_nlp(tiny_transformer, model=model)
    overfit(nlp)
    return nlp


def test_fp32_runtime_pipeline_predicts_the_entities_of_its_source(trained_nlp, runtime_nlp):
    assert ents_of(runtime_nlp.pipe(TEXTS, batch_size=3)) == ents_of(trained_nlp.pipe(TEXTS, batch_size=3))
    assert any(ents_of(runtime_nlp.pipe(TEXTS)))


def test_runtime_pipeline_keeps_casing_and_token_features(featured_nlp):
    runtime = build_runtime(featured_nlp)
    model = runtime.get_pipe("wnut_ner").model
    assert model.attrs["casing_features"] and model.has_ref("token_features")
    assert ents_of(runtime.pipe(TEXTS)) == ents_of(featured_nlp.pipe(TEXTS))


def test_int8_runtime_pipeline_runs_its_int8_graph(trained_nlp):
    runtime = build_runtime(trained_nlp, int8=True)
    ner = runtime.get_pipe("wnut_ner")
    assert ner.engine == "onnx-int8" and ner.model.attrs["onnx_encoder"].quantized
    assert len(list(runtime.pipe(TEXTS))) == len(TEXTS)


def test_runtime_pipeline_round_trips_through_disk(runtime_nlp, trained_nlp, tmp_path):
    runtime_nlp.to_disk(tmp_path / "runtime")
    loaded = spacy.load(tmp_path / "runtime")
    assert loaded.get_pipe("wnut_ner").is_runtime
    assert ents_of(loaded.pipe(TEXTS)) == ents_of(trained_nlp.pipe(TEXTS))
    assert loaded.meta["spacy_wnut_runtime"]["graph"] == "fp32"


def test_runtime_pipeline_round_trips_through_bytes(runtime_nlp, trained_nlp):
    config = runtime_nlp.config
    copy = spacy.util.load_model_from_config(config, auto_fill=False)
    copy.from_bytes(runtime_nlp.to_bytes())
    assert ents_of(copy.pipe(TEXTS)) == ents_of(trained_nlp.pipe(TEXTS))


def test_runtime_pipeline_in_two_processes_gives_the_same_docs(runtime_nlp):
    alone = ents_of(runtime_nlp.pipe(TEXTS))
    forked = ents_of(runtime_nlp.pipe(TEXTS, n_process=2, batch_size=2))
    assert len(forked) == len(TEXTS) and forked == alone


def test_runtime_pipeline_writes_scored_spans(model_dir):
    nlp = spacy.load(model_dir, config={"components": {"wnut_ner": {"spans_key": "scored"}}})
    doc, source = build_runtime(nlp)(TEXTS[1]), nlp(TEXTS[1])
    assert len(doc.spans["scored"]) == 2
    assert [(s.start, s.end) for s in doc.spans["scored"]] == [(s.start, s.end) for s in source.spans["scored"]]
    assert doc.spans["scored"].attrs["scores"] == pytest.approx(source.spans["scored"].attrs["scores"], abs=1e-4)


def test_runtime_pipeline_scores_like_any_spacy_pipeline(runtime_nlp, trained_nlp):
    examples = [Example.from_dict(runtime_nlp.make_doc(t), {"entities": e}) for t, e in TRAIN_DATA]
    assert runtime_nlp.evaluate(examples)["ents_f"] == trained_nlp.evaluate(examples)["ents_f"]


@pytest.mark.parametrize("method", ["update", "initialize"])
def test_training_a_runtime_pipeline_says_how_to_train(runtime_nlp, method):
    examples = [Example.from_dict(runtime_nlp.make_doc(t), {"entities": e}) for t, e in TRAIN_DATA]
    with pytest.raises(ConfigError, match=r"cannot be trained: train the pipeline it was exported from.*\[train\]"):
        if method == "update":
            runtime_nlp.update(examples)
        else:
            runtime_nlp.initialize(lambda: examples)


def test_runtime_pipeline_refuses_a_torch_engine(runtime_nlp, tmp_path):
    runtime_nlp.to_disk(tmp_path / "runtime")
    with pytest.raises(ConfigError, match="a run-time pipeline runs its ONNX graph: engine must be one of"):
        spacy.load(tmp_path / "runtime", config={"components": {"wnut_ner": {"engine": "torch"}}})


def test_runtime_pipeline_refuses_the_other_graphs_engine_name(runtime_nlp, tmp_path):
    runtime_nlp.to_disk(tmp_path / "runtime")
    nlp = spacy.load(tmp_path / "runtime", config={"components": {"wnut_ner": {"engine": "onnx-int8"}}})
    with pytest.raises(ConfigError, match="holds an 'onnx' graph; set engine = 'onnx'"):
        nlp("Tom Hanks")


def test_exporting_a_runtime_pipeline_again_is_refused(runtime_nlp):
    with pytest.raises(ConfigError, match="this is a run-time pipeline already"):
        build_runtime(runtime_nlp)


def test_exporting_an_untrained_pipeline_is_refused(tiny_transformer):
    with pytest.raises(ConfigError, match="not trained: there is nothing to export"):
        build_runtime(make_nlp(tiny_transformer))


def test_a_slow_only_tokenizer_is_refused_clearly():
    """Transformers 5 has no slow tokenizers; one from elsewhere (no offsets to align by) is refused by name."""
    from spacy_wnut.ml.tokenization import SubwordTokenizer

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ConfigError, match="SlowTokenizer is a slow .* needs a fast one"):
        SubwordTokenizer.from_hf(SlowTokenizer(), 512)


def test_other_span_getters_are_refused(tiny_transformer):
    spans = {"@span_getters": "spacy-transformers.doc_spans.v1"}
    nlp = make_nlp(tiny_transformer, model={"transformer": {"name": str(tiny_transformer), "get_spans": spans}})
    overfit(nlp, steps=2)
    with pytest.raises(ConfigError, match=r"get_spans\] the run-time pipeline reads strided windows only"):
        build_runtime(nlp)


def test_export_runtime_command_writes_a_loadable_pipeline(model_dir, trained_nlp, tmp_path):
    done = subprocess.run(wnut_command("export-runtime", model_dir, tmp_path / "rt"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "fp32 ONNX graph" in done.stdout
    assert ents_of(spacy.load(tmp_path / "rt").pipe(TEXTS)) == ents_of(trained_nlp.pipe(TEXTS))
    again = subprocess.run(wnut_command("export-runtime", model_dir, tmp_path / "rt"), capture_output=True, text=True)
    assert again.returncode == 1 and "already exists; pass --overwrite" in again.stderr


def test_export_runtime_keeps_an_earlier_output_when_it_fails(tmp_path):
    (tmp_path / "rt").mkdir()
    (tmp_path / "rt" / "keep").write_text("earlier")
    done = subprocess.run(
        wnut_command("export-runtime", tmp_path / "missing", tmp_path / "rt", "--overwrite"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "missing" in done.stderr
    assert (tmp_path / "rt" / "keep").read_text() == "earlier"


def test_export_runtime_returns_what_it_wrote(model_dir, tmp_path):
    done = export_runtime(model_dir, tmp_path / "rt", int8=True)
    assert done.graph == "int8" and done.component == "wnut_ner" and done.onnx_bytes > 0
