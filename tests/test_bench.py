"""The benchmark harness in --quick mode, so that it cannot rot (the full run is for people)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from .util import train_examples

BENCH = Path(__file__).parents[1] / "bench" / "run.py"


def test_quick_benchmark_writes_results_table_and_chart(tiny_transformer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))] * 3
    for split in ("train", "dev", "test"):
        DocBin(docs=docs).to_disk(corpus / f"{split}.spacy")
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--backbone",
            str(tiny_transformer),
            "--corpus",
            str(corpus),
            "--quick",
            "--results",
            str(tmp_path / "results"),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = (tmp_path / "results").glob("*-quick.json")
    payload = json.loads(json_path.read_text())
    results = payload["results"]
    engines = {"spacy-wnut[onnx]", "spacy-wnut[onnx-int8]", "spacy-wnut[torch-int8]"}
    others = {"hf-recipe-tutorial", "hf-recipe-our-hparams", "spacy-transformer-ner", "raw-encoder-forward"}
    assert set(results) == {"spacy-wnut"} | engines | others
    for name in engines:
        assert results[name].get("skipped") or results[name]["train_seconds"] is None, name
    for name, figures in results.items():
        if "skipped" in figures:
            continue
        assert all(figures["words_per_second"][bs] > 0 for bs in ("1", "64")), name
        assert figures["peak_rss_mb"] > 100, name
        if name != "raw-encoder-forward":
            assert 0.0 <= figures["test"]["f"] <= 1.0, name
        if name not in engines | {"raw-encoder-forward"}:
            assert figures["train_seconds"] > 0, name
        if name.startswith("hf-recipe"):  # scored by its compute_metrics through evaluate, offline
            assert set(figures["trainer_dev_scores"]) == {"precision", "recall", "f1", "accuracy"}, name
    assert set(payload["ratios_ours_over_other"]) == others
    ran = {name for name in engines if "skipped" not in results[name]}
    assert set(payload["engines_over_fp32"]) == ran
    assert all(row["speedup_bs64"] > 0 for row in payload["engines_over_fp32"].values())
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["torch"]
    table = json_path.with_suffix(".md").read_text()
    assert "**spacy-wnut**" in table and "Ratios" in table and "Machine:" in table
    assert json_path.with_suffix(".png").stat().st_size > 5_000


def test_seed_study_reports_each_seed_and_the_spread(tiny_transformer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))]
    for split in ("train", "dev", "test"):
        DocBin(docs=docs).to_disk(corpus / f"{split}.spacy")
    settings = {
        "training.max_steps": 20,
        "training.eval_frequency": 10,
        "training.max_epochs": 0,
        "training.optimizer.learn_rate.initial_rate": 0.001,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "components.wnut_ner.model.freeze_embeddings": "false",
        "training.logger.progress_bar": "null",
    }
    command = [
        sys.executable,
        str(BENCH.parent / "seeds.py"),
        "--backbone",
        str(tiny_transformer),
        "--corpus",
        str(corpus),
        "--seeds",
        "0,1",
        "--name",
        "tiny",
        "--workdir",
        str(tmp_path / "work"),
        "--results",
        str(tmp_path / "results"),
    ]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = (tmp_path / "results").glob("*-seeds-tiny.json")
    payload = json.loads(json_path.read_text())
    assert sorted(payload["runs"]) == ["0", "1"]
    for run in payload["runs"].values():
        assert run["best_step"] in (10, 20) and 0.0 <= run["test"]["f"] <= 1.0 and run["train_seconds"] > 0
    tests = [run["test"]["f"] for run in payload["runs"].values()]
    assert payload["summary"]["test"]["mean"] == sum(tests) / 2 and payload["summary"]["test"]["n"] == 2
    assert "test F1 over 2 seed(s): mean" in result.stdout


def test_benchmark_of_a_trained_pipeline_measures_it_beside_the_raw_encoder(trained_nlp, tiny_transformer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))]
    for split in ("train", "dev", "test"):
        DocBin(docs=docs).to_disk(corpus / f"{split}.spacy")
    trained_nlp.to_disk(tmp_path / "pipeline")
    command = [sys.executable, str(BENCH), "--backbone", str(tiny_transformer), "--corpus", str(corpus), "--quick"]
    command += ["--pipeline", str(tmp_path / "pipeline"), "--systems", "spacy-wnut,raw-encoder-forward"]
    command += ["--results", str(tmp_path / "results"), "--workdir", str(tmp_path / "work" / "not-yet-made")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = (tmp_path / "results").glob("*-quick.json")
    results = json.loads(json_path.read_text())["results"]
    assert set(results) == {"spacy-wnut", "raw-encoder-forward"}
    assert results["spacy-wnut"]["train_seconds"] is None
    assert results["spacy-wnut"]["pipeline"] == str((tmp_path / "pipeline").resolve())
    assert all(results[name]["words_per_second"]["1"] > 0 for name in results)


def test_chunking_benchmark_compares_each_setting_with_one_call(trained_nlp, tmp_path):
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))]
    DocBin(docs=docs).to_disk(tmp_path / "test.spacy")
    trained_nlp.to_disk(tmp_path / "pipeline")
    script = Path(__file__).parents[1] / "bench" / "chunking.py"
    command = [sys.executable, str(script), str(tmp_path / "pipeline"), str(tmp_path / "test.spacy")]
    command += [str(tmp_path / "out" / "chunking"), "--engines", "torch", "--budgets", "0,16", "--quick"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = json.loads((tmp_path / "out" / "chunking.json").read_text())["rows"]
    assert [row["batch_subwords"] for row in rows] == ["null", "16"]
    assert all(row["same_entities_as_null"] for row in rows)
    assert rows[0]["ratio_to_null"] == {"pipe": 1.0, "requests": 1.0}
    assert all(row["requests_over_single"] > 0 for row in rows)
    assert "| torch | 16 |" in (tmp_path / "out" / "chunking.md").read_text()


def test_serve_benchmark_measures_each_setting_and_the_memory(model_dir, tmp_path):
    pytest.importorskip("aiohttp")
    script = Path(__file__).parents[1] / "bench" / "serve.py"
    command = [sys.executable, str(script), "--model", str(model_dir), "--quick", "--threads", "1"]
    command += ["--mmap-thresholds", "1048576,0", "--memory", "40", "--results", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = tmp_path.glob("*-serve-quick.json")
    payload = json.loads(json_path.read_text())
    [engine] = payload["engines"].values()
    assert sorted(engine["servers"]) == ["off", "on (64, 5 ms, mmap 0)", "on (64, 5 ms, mmap 1048576)"]
    cells = [cell for run in engine["servers"].values() for cell in run["cells"]]
    assert all(cell["errors"] == 0 and cell["requests_per_second"] > 0 for cell in cells)
    assert {ratio["goal"] for ratio in engine["ratios"]} == {">= 2", ">= 0.8"}
    assert payload["memory"]["samples"][-1]["requests"] == 40
    assert "Memory: 40 requests" in json_path.with_suffix(".md").read_text()
