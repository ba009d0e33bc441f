"""Inference engines: each loads from a saved pipeline and predicts as the fp32 model does."""

import importlib.util
import pickle

import pytest
import spacy

from spacy_wnut.pipeline import engines
from spacy_wnut.pipeline.engines import ENGINES, check_engine

from ..util import TRAIN_DATA, ents_of, make_nlp, overfit

FAST_ENGINES = [name for name in ENGINES if name != "torch"]
TEXTS = [text for text, _ in TRAIN_DATA] + [
    "Tom Hanks loves New York",
    "apple inc is watching Game of Thrones",
    "",
    "   ",
    "I love New York so much " * 40,
]


def _available(name: str) -> bool:
    try:
        check_engine(name)
    except ImportError:
        return False
    return True


def _with_engine(path, engine: str):
    return spacy.load(path, config={"components": {"wnut_ner": {"engine": engine}}})


def _agreement(ents_a, ents_b) -> float:
    a = {(i, *e) for i, ents in enumerate(ents_a) for e in ents}
    b = {(i, *e) for i, ents in enumerate(ents_b) for e in ents}
    return len(a & b) / max(len(a | b), 1)


@pytest.fixture(scope="module")
def saved_pipeline(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved")
    trained_nlp.to_disk(path)
    return path


@pytest.mark.parametrize("engine", FAST_ENGINES)
def test_engine_from_saved_pipeline_agrees_with_fp32(saved_pipeline, trained_nlp, engine):
    if not _available(engine):
        pytest.skip(f"packages for engine {engine!r} are not installed")
    expected = ents_of(trained_nlp.pipe(TEXTS))
    assert any(expected)
    nlp = _with_engine(saved_pipeline, engine)
    assert _agreement(ents_of(nlp.pipe(TEXTS, batch_size=2)), expected) >= 0.98


@pytest.mark.parametrize("engine", ["onnx", "onnx-int8"])
def test_onnx_graph_is_saved_beside_the_pipeline_and_reused(saved_pipeline, tmp_path, monkeypatch, engine):
    if not _available(engine):
        pytest.skip(f"packages for engine {engine!r} are not installed")
    nlp = _with_engine(saved_pipeline, engine)
    expected = ents_of(nlp.pipe(TEXTS))
    nlp.to_disk(tmp_path)
    assert (tmp_path / "wnut_ner" / f"{engine}.onnx").exists()

    def no_export(*args, **kwargs):
        raise AssertionError("the saved graph should have been used")

    monkeypatch.setattr("spacy_wnut.pipeline.engines.export_onnx", no_export)
    assert ents_of(spacy.load(tmp_path).pipe(TEXTS)) == expected


def test_onnx_engine_pickles_and_runs_in_worker_processes(saved_pipeline):
    if not _available("onnx"):
        pytest.skip("onnxruntime is not installed")
    nlp = _with_engine(saved_pipeline, "onnx")
    expected = ents_of(nlp.pipe(TEXTS))
    assert ents_of(pickle.loads(pickle.dumps(nlp)).pipe(TEXTS)) == expected
    assert ents_of(nlp.pipe(TEXTS, n_process=2, batch_size=2)) == expected


def test_training_drops_a_built_engine(tiny_transformer):
    if not _available("onnx"):
        pytest.skip("onnxruntime is not installed")
    nlp = make_nlp(tiny_transformer, engine="onnx")
    overfit(nlp, steps=2)
    ner = nlp.get_pipe("wnut_ner")
    before = ents_of(nlp.pipe(TEXTS))
    assert ner.engine_runner.is_built
    overfit(nlp, steps=60)
    assert not ner.engine_runner.is_built
    after = ents_of(nlp.pipe(TEXTS))
    assert after != before
    assert ner.engine_runner.is_built


@pytest.mark.parametrize(
    "engine,package", [("onnx", "onnxruntime"), ("onnx-int8", "onnxruntime"), ("torch-int8", "torchao")]
)
def test_missing_engine_package_is_named(tiny_transformer, monkeypatch, engine, package):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a)
    )
    with pytest.raises(ImportError, match=rf"engine '{engine}' needs .*{package}.*pip install"):
        make_nlp(tiny_transformer, engine=engine)


def test_building_an_onnx_graph_without_its_exporter_names_the_train_extra(trained_nlp, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a)
    )
    with pytest.raises(ImportError, match=r"building an ONNX graph needs .*onnxscript.*spacy-wnut\[train\]"):
        engines.export_onnx(trained_nlp.get_pipe("wnut_ner").model, quantize=False)


@pytest.mark.parametrize(
    "config,message",
    [
        ({"engine": "tensorrt"}, "engine must be one of"),
        ({"engine": "onnx", "store_trf_data": True}, "store_trf_data needs engine 'torch'"),
        ({"n_threads": 0}, "n_threads must be a positive number"),
        ({"batch_subwords": 0}, "batch_subwords must be a positive number"),
    ],
)
def test_bad_engine_settings_are_rejected(tiny_transformer, config, message):
    if config.get("engine") == "onnx" and not _available("onnx"):
        pytest.skip("onnxruntime is not installed")
    with pytest.raises(ValueError, match=message):
        make_nlp(tiny_transformer, **config)


def test_pipe_sorts_by_length_but_keeps_input_order(trained_nlp):
    texts = sorted(TEXTS * 3, key=lambda t: (len(t) * 7919) % 13)
    one_by_one = [ents_of([trained_nlp(text)])[0] for text in texts]
    docs = list(trained_nlp.pipe(texts, batch_size=3))
    assert [doc.text for doc in docs] == texts
    assert ents_of(docs) == one_by_one


@pytest.mark.parametrize("casing_features", [False, True])
def test_engine_scores_equal_the_model_scores(tiny_transformer, casing_features):
    """The torch engine and the module the other engines export score as the Thinc model does (the same
    maths, run by torch instead of Thinc: equal to float32 rounding)."""
    import numpy
    import torch

    from spacy_wnut.ml.encoding import encode_for
    from spacy_wnut.ml.head import scores_from_logits

    model = {"casing_features": casing_features, "transformer": {"name": str(tiny_transformer)}}
    nlp = make_nlp(tiny_transformer, model=model)
    overfit(nlp, steps=5)
    ner = nlp.get_pipe("wnut_ner")
    docs = [nlp.make_doc(text) for text in TEXTS if text.strip()]
    expected = ner.model.predict(docs)
    lean = engines.EngineRunner("torch").scores(ner.model, docs)
    numpy.testing.assert_allclose(lean.scores, ner.model.ops.to_numpy(expected.scores), atol=1e-5)
    numpy.testing.assert_array_equal(lean.align.dataXd, expected.align.dataXd)
    encoded = encode_for(ner.model, docs)
    with torch.inference_mode():
        logits = engines.tagger_module(ner.model)(
            torch.from_numpy(encoded.input_ids), torch.from_numpy(encoded.attention_mask)
        )
    exported = scores_from_logits(ner.model, docs, encoded, logits.numpy().reshape(-1, logits.shape[-1]))
    numpy.testing.assert_allclose(exported, ner.model.ops.to_numpy(expected.scores), atol=1e-4)


def test_int8_graph_keeps_down_projections_in_fp32(trained_nlp, tmp_path):
    import onnx

    model = trained_nlp.get_pipe("wnut_ner").model
    (tmp_path / "fp32.onnx").write_bytes(engines.export_onnx(model, quantize=False))
    kept = engines.down_projections(tmp_path / "fp32.onnx")
    assert len(kept) == 3  # the feed-forward output of both layers, and the head
    graph = onnx.load_from_string(engines.export_onnx(model, quantize=True)).graph
    ops = {node.name: node.op_type for node in graph.node}
    assert all(ops[name] == "MatMul" for name in kept)
    assert any(op in ("MatMulInteger", "DynamicQuantizeMatMul") for op in ops.values())


def test_every_engine_keeps_one_contract_logits_of_the_same_shape(trained_nlp, tmp_path):
    """torch, torch-int8, onnx, onnx-int8 and the run-time pipeline's graph: one `Engine` protocol, and the
    same output (the logits of the encoder and the head's encoder columns) for the same encoded batch."""
    import numpy

    from spacy_wnut.ml.encoding import encode_for
    from spacy_wnut.ml.engine import Engine
    from spacy_wnut.tools.runtime_export import export_runtime

    model = trained_nlp.get_pipe("wnut_ner").model
    docs = [trained_nlp.make_doc(text) for text in TEXTS if text.strip()]
    encoded = encode_for(model, docs)
    built = {name: engines.EngineRunner(name).engine(model) for name in ENGINES if _available(name)}
    trained_nlp.to_disk(tmp_path / "saved")
    export_runtime(tmp_path / "saved", tmp_path / "runtime")
    built["run-time"] = spacy.load(tmp_path / "runtime").get_pipe("wnut_ner").model.attrs["onnx_encoder"]
    reference = built["torch"](encoded)
    assert reference.shape == (encoded.n_rows, len(trained_nlp.get_pipe("wnut_ner").head.tags))
    real = encoded.attention_mask.reshape(-1) == 1  # padding rows are never read (the run-time one leaves them 0)
    for name, engine in built.items():
        assert isinstance(engine, Engine) and engine.on_gpu is False, name
        logits = numpy.asarray(engine(encoded))
        assert logits.shape == reference.shape, name
        tolerance = 0.5 if "int8" in name else 1e-3
        numpy.testing.assert_allclose(logits[real], reference[real], atol=tolerance, err_msg=name)


def test_building_an_engine_leaves_torchs_random_state_as_it_was(trained_nlp):
    """Training evaluates (and so builds the torch engine) between steps: a build that drew random numbers
    would change the dropout of every later step, and a seed would no longer give the same model."""
    import torch

    model = trained_nlp.get_pipe("wnut_ner").model
    before = torch.random.get_rng_state().clone()
    engines.EngineRunner("torch").engine(model)
    engines.tagger_module(model)
    assert torch.equal(before, torch.random.get_rng_state())
