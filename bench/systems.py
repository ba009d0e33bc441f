"""The systems the benchmark compares, each trained on train, selected on dev, scored on test.

Each `run_*` returns the same figures: test and dev scores (seqeval, entity
level, on the gold tokens), training seconds and inference words/s. Inference
is timed on the same sample of test sentences for every system.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import spacy
from spacy.tokens import Doc

from measure import CharEntities, plain_copy, read_gold, scores_from_char_entities, words_per_second

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "distilbert.cfg"


@dataclass
class Setup:
    """What every system gets: backbone, data, epochs, where to write, how to time."""

    backbone: str
    train: Path
    dev: Path
    test: Path
    epochs: int
    workdir: Path
    speed_sentences: int
    batch_sizes: List[int]
    repeats: int
    pipeline: Optional[str] = None  # a trained, tuned spacy-wnut pipeline: measure it instead of training one


def _gold_docs(nlp, docs: List[Doc]) -> List[Doc]:
    return [plain_copy(d, nlp.vocab) for d in docs]


def _spacy_entities(nlp, docs: List[Doc], batch_size: int = 64) -> List[CharEntities]:
    return [
        [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        for doc in nlp.pipe(_gold_docs(nlp, docs), batch_size=batch_size)
    ]


def _evaluate_spacy(nlp, setup: Setup, train_seconds: float, dev_f: float) -> Dict:
    test = read_gold(setup.test)
    sample = test[: setup.speed_sentences]
    n_words = sum(len(d) for d in sample)
    speed = words_per_second(
        lambda bs: list(nlp.pipe(_gold_docs(nlp, sample), batch_size=bs)), n_words, setup.batch_sizes, setup.repeats
    )
    return {
        "test": scores_from_char_entities(test, _spacy_entities(nlp, test)),
        "dev_f": dev_f,
        "train_seconds": train_seconds,
        "words_per_second": speed,
    }


def _dev_f(nlp, setup: Setup) -> float:
    """seqeval entity F1 of a spaCy pipeline on the dev set (read once)."""
    dev = read_gold(setup.dev)
    return scores_from_char_entities(dev, _spacy_entities(nlp, dev))["f"]


def _spacy_train(config: Path, output: Path, overrides: Dict) -> float:
    from spacy.cli.train import train

    start = time.perf_counter()
    train(config, output, overrides=overrides)
    return time.perf_counter() - start


def run_spacy_wnut(setup: Setup) -> Dict:
    """This package: `spacy train` with configs/distilbert.cfg, then `tune-bias` on dev (the project's steps);
    or, with `--pipeline`, that trained pipeline (no training measured)."""
    from spacy_wnut.training.tune import tune_entity_bias

    output = setup.workdir / "spacy-wnut"
    if setup.pipeline:
        nlp = spacy.load(setup.pipeline)
        output.mkdir(parents=True, exist_ok=True)
        nlp.to_disk(output / "model-tuned")  # where the other engines' systems load it from
        result = _evaluate_spacy(nlp, setup, None, _dev_f(nlp, setup))
        result["entity_bias"] = nlp.get_pipe("wnut_ner").entity_bias
        result["pipeline"] = setup.pipeline
        return result
    seconds = _spacy_train(
        CONFIG,
        output,
        {
            "paths.transformer": setup.backbone,
            "paths.train": str(setup.train),
            "paths.dev": str(setup.dev),
            "training.max_epochs": setup.epochs,
        },
    )
    nlp = spacy.load(output / "model-best")
    best, _ = tune_entity_bias(nlp, setup.dev)
    nlp.get_pipe("wnut_ner").entity_bias = best.bias
    nlp.to_disk(output / "model-tuned")
    dev_f = _dev_f(nlp, setup)
    result = _evaluate_spacy(nlp, setup, seconds, dev_f)
    result["entity_bias"] = best.bias
    return result


def _run_spacy_wnut_engine(setup: Setup, engine: str) -> Dict:
    """The pipeline spacy-wnut trained in this run, predicting with another inference engine."""
    from spacy_wnut.pipeline.engines import check_engine

    try:
        check_engine(engine)
    except ImportError as e:
        return {"skipped": str(e)}
    tuned = _tuned(setup)
    if not tuned.exists():
        return {"skipped": f"{tuned} not found: the spacy-wnut system must run first"}
    start = time.perf_counter()
    nlp = spacy.load(tuned, config={"components": {"wnut_ner": {"engine": engine}}})
    return _evaluate_built(nlp, setup, start)


def _tuned(setup: Setup) -> Path:
    """Where the spacy-wnut system leaves its trained, tuned pipeline for the other rows."""
    return setup.workdir / "spacy-wnut" / "model-tuned"


def _evaluate_built(nlp, setup: Setup, start: float) -> Dict:
    """Scores and speed of a pipeline built from `model-tuned`; the build, counted from `start`, ends
    with a first doc (an engine is built on its first call)."""
    nlp("warm-up builds the engine")
    build_seconds = time.perf_counter() - start
    result = _evaluate_spacy(nlp, setup, None, _dev_f(nlp, setup))
    result["engine_build_seconds"] = build_seconds
    return result


def run_spacy_wnut_onnx(setup: Setup) -> Dict:
    """spacy-wnut's trained pipeline with `engine="onnx"` (ONNX Runtime, fp32)."""
    return _run_spacy_wnut_engine(setup, "onnx")


def run_spacy_wnut_onnx_int8(setup: Setup) -> Dict:
    """spacy-wnut's trained pipeline with `engine="onnx-int8"` (ONNX Runtime, dynamic int8)."""
    return _run_spacy_wnut_engine(setup, "onnx-int8")


def run_spacy_wnut_torch_int8(setup: Setup) -> Dict:
    """spacy-wnut's trained pipeline with `engine="torch-int8"` (torchao dynamic int8)."""
    return _run_spacy_wnut_engine(setup, "torch-int8")


def _run_spacy_wnut_runtime(setup: Setup, int8: bool) -> Dict:
    """The run-time pipeline (ONNX Runtime + tokenizers) exported from this run's trained pipeline."""
    from spacy_wnut.tools.runtime_export import export_runtime

    tuned = _tuned(setup)
    if not tuned.exists():
        return {"skipped": f"{tuned} not found: the spacy-wnut system must run first"}
    start = time.perf_counter()
    output = tuned.parent / ("model-runtime-int8" if int8 else "model-runtime")
    export_runtime(tuned, output, int8=int8, overwrite=True)
    return _evaluate_built(spacy.load(output), setup, start)


def run_spacy_wnut_runtime(setup: Setup) -> Dict:
    """The run-time pipeline of spacy-wnut's trained pipeline, fp32 graph (`spacy wnut export-runtime`)."""
    return _run_spacy_wnut_runtime(setup, int8=False)


def run_spacy_wnut_runtime_int8(setup: Setup) -> Dict:
    """The run-time pipeline of spacy-wnut's trained pipeline, int8 graph (`export-runtime --int8`)."""
    return _run_spacy_wnut_runtime(setup, int8=True)


def run_spacy_default(setup: Setup) -> Dict:
    """spaCy's own `transformer` + `ner` (`spacy init config -p ner -G`), same backbone and epochs.

    It needs spacy-transformers, which spacy-wnut 0.4 no longer installs (it pins transformers<4.53.3):
    skipped, with that reason, unless the benchmark runs in a venv that has it.
    """
    from spacy.cli.init_config import init_config

    from spacy_wnut.ml.legacy import spacy_transformers_installed

    if not spacy_transformers_installed():
        return {
            "skipped": "spacy-transformers is not installed (it pins transformers<4.53.3: give it a venv of its own)"
        }

    config_path = setup.workdir / "spacy-default.cfg"
    init_config(lang="en", pipeline=["ner"], gpu=True).to_disk(config_path)
    output = setup.workdir / "spacy-default"
    from spacy_wnut.ml.backbones import resolve_backbone

    seconds = _spacy_train(
        config_path,
        output,
        {
            "components.transformer.model.name": resolve_backbone(setup.backbone),
            "paths.train": str(setup.train),
            "paths.dev": str(setup.dev),
            "training.max_epochs": setup.epochs,
            "training.max_steps": 0,
        },
    )
    nlp = spacy.load(output / "model-best")
    dev_f = _dev_f(nlp, setup)
    return _evaluate_spacy(nlp, setup, seconds, dev_f)


def _run_hf_recipe(setup: Setup, name: str, hyper: Dict) -> Dict:
    from transformers import pipeline

    from spacy_wnut.ml.backbones import resolve_backbone

    from hf_recipe import train as hf_train

    trained = hf_train(resolve_backbone(setup.backbone), setup.train, setup.dev, setup.workdir / name, **hyper)
    ner = pipeline("token-classification", model=trained["checkpoint"], aggregation_strategy="first", device="cpu")

    def entities(docs: List[Doc], batch_size: int = 64) -> List[CharEntities]:
        out = ner([d.text for d in docs], batch_size=batch_size)
        return [[(e["start"], e["end"], e["entity_group"]) for e in ents] for ents in out]

    dev, test = read_gold(setup.dev), read_gold(setup.test)
    sample = test[: setup.speed_sentences]
    speed = words_per_second(
        lambda bs: ner([d.text for d in sample], batch_size=bs),
        sum(len(d) for d in sample),
        setup.batch_sizes,
        setup.repeats,
    )
    return {
        "test": scores_from_char_entities(test, entities(test)),
        "dev_f": scores_from_char_entities(dev, entities(dev))["f"],
        "train_seconds": trained["train_seconds"],
        # What the recipe's own compute_metrics (evaluate's seqeval) says on dev, first subwords, best epoch.
        "trainer_dev_scores": trained["dev_scores_first_subword"],
        "words_per_second": speed,
        "hyper_parameters": hyper,
    }


def run_hf_tutorial(setup: Setup) -> Dict:
    """The HF tutorial's recipe verbatim (lr 2e-5, 2 epochs, batch 16), inference by `pipeline(..., "first")`."""
    from hf_recipe import TUTORIAL

    return _run_hf_recipe(
        setup,
        "hf-tutorial",
        {
            "learning_rate": TUTORIAL["learning_rate"],
            "epochs": min(TUTORIAL["epochs"], setup.epochs),
            "batch_size": TUTORIAL["batch_size"],
        },
    )


def run_hf_ours(setup: Setup) -> Dict:
    """The same recipe with our hyper-parameters (lr 1e-4, 100 warm-up steps, our epochs, batch 16)."""
    return _run_hf_recipe(
        setup,
        "hf-ours",
        {
            "learning_rate": 1e-4,
            "epochs": setup.epochs,
            "batch_size": 16,
            "warmup_steps": 100,
        },
    )


def run_raw_encoder(setup: Setup) -> Dict:
    """The limit: the encoder's forward pass alone on pre-tokenised, length-sorted batches."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from spacy_wnut.ml.backbones import resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(setup.backbone))
    model = AutoModel.from_pretrained(resolve_backbone(setup.backbone)).eval()
    sample = read_gold(setup.test)[: setup.speed_sentences]
    # Sorted by subword count (not word count: one URL can be 30 subwords), so batches pad least.
    words = sorted(
        ([t.text for t in d] for d in sample), key=lambda w: len(tokenizer(w, is_split_into_words=True)["input_ids"])
    )

    def batches(batch_size: int) -> List[Dict]:
        return [
            tokenizer(
                words[i : i + batch_size], is_split_into_words=True, padding=True, truncation=True, return_tensors="pt"
            )
            for i in range(0, len(words), batch_size)
        ]

    prepared = {bs: batches(bs) for bs in setup.batch_sizes}

    def forward(batch_size: int) -> None:
        with torch.inference_mode():
            for batch in prepared[batch_size]:
                model(**batch)

    speed = words_per_second(forward, sum(len(w) for w in words), setup.batch_sizes, setup.repeats)
    return {"test": None, "dev_f": None, "train_seconds": None, "words_per_second": speed}


SYSTEMS: Dict[str, Callable[[Setup], Dict]] = {
    "spacy-wnut": run_spacy_wnut,
    "spacy-wnut[onnx]": run_spacy_wnut_onnx,
    "spacy-wnut[onnx-int8]": run_spacy_wnut_onnx_int8,
    "spacy-wnut[torch-int8]": run_spacy_wnut_torch_int8,
    "spacy-wnut[runtime]": run_spacy_wnut_runtime,
    "spacy-wnut[runtime-int8]": run_spacy_wnut_runtime_int8,
    "hf-recipe-tutorial": run_hf_tutorial,
    "hf-recipe-our-hparams": run_hf_ours,
    "spacy-transformer-ner": run_spacy_default,
    "raw-encoder-forward": run_raw_encoder,
}
