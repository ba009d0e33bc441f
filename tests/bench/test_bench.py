"""The benchmark harness in --quick mode, so that it cannot rot (the full run is for people)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import spacy
from spacy.tokens import DocBin

from ..util import train_examples

pytestmark = pytest.mark.slow  # each runs a benchmark script in --quick mode

BENCH = Path(__file__).parents[2] / "bench" / "run.py"


def set_options(settings: Dict[str, Any]) -> List[str]:
    """A bench script's `--set KEY=VALUE` options for config overrides."""
    return [option for key, value in settings.items() for option in ("--set", f"{key}={value}")]


def tiny_corpus(tmp_path: Path, copies: int = 1) -> Path:
    """TRAIN_DATA (`copies` times) as train, dev and test DocBins in `tmp_path/corpus`."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))] * copies
    for split in ("train", "dev", "test"):
        DocBin(docs=docs).to_disk(corpus / f"{split}.spacy")
    return corpus


def test_quick_benchmark_writes_results_table_and_chart(tiny_transformer, tmp_path):
    corpus = tiny_corpus(tmp_path, copies=3)
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
    engines |= {"spacy-wnut[runtime]", "spacy-wnut[runtime-int8]"}
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
    # spaCy's own transformer + ner needs spacy-transformers, which [train] no longer brings: skipped, with why
    if importlib.util.find_spec("spacy_transformers") is None:
        assert "spacy-transformers is not installed" in results["spacy-transformer-ner"].get("skipped", "")
    assert set(payload["ratios_ours_over_other"]) == {name for name in others if "skipped" not in results[name]}
    ran = {name for name in engines if "skipped" not in results[name]}
    assert set(payload["engines_over_fp32"]) == ran
    assert all(row["speedup_bs64"] > 0 for row in payload["engines_over_fp32"].values())
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["torch"]
    table = json_path.with_suffix(".md").read_text()
    assert "**spacy-wnut**" in table and "Ratios" in table and "Machine:" in table
    assert json_path.with_suffix(".png").stat().st_size > 5_000


def test_seed_study_reports_each_seed_and_the_spread(tiny_transformer, tmp_path):
    corpus = tiny_corpus(tmp_path)
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
    command += set_options(settings)
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


def test_stack_comparison_runs_each_stack_per_seed_and_reuses_earlier_runs(tiny_transformer, tmp_path):
    corpus = tiny_corpus(tmp_path)
    settings = {"training.max_steps": 4, "training.eval_frequency": 2, "training.max_epochs": 0}
    settings["training.logger.progress_bar"] = "null"
    command = [sys.executable, str(BENCH.parent / "stack.py"), "--backbone", str(tiny_transformer)]
    command += ["--corpus", str(corpus), "--seeds", "0", "--name", "tiny-stacks", "--workdir", str(tmp_path / "work")]
    command += ["--results", str(tmp_path / "results"), *set_options(settings)]
    here = f"{sys.executable}:{BENCH.parent.parent}"
    result = subprocess.run(
        [*command, "--stack", f"a.1={here}", "--stack", f"b={here}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-4000:]
    payload = json.loads((tmp_path / "results").glob("*-tiny-stacks.json").__next__().read_text())
    assert set(payload["runs"]) == {"a.1", "b"} and payload["runs"]["b"]["0"]["train_seconds"] > 0
    assert "test F1, b - a.1:" in result.stdout and "train seconds, b / a.1:" in result.stdout
    (tmp_path / "runs.jsonl").write_text(result.stdout)
    logs = sorted((tmp_path / "work").glob("*/seed0.log"))
    stamps = [log.stat().st_mtime_ns for log in logs]
    again = subprocess.run(
        [*command, "--stack", f"a.1={here}", "--stack", f"b={here}", "--runs", str(tmp_path / "runs.jsonl")],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert len(logs) == 2 and [log.stat().st_mtime_ns for log in logs] == stamps  # nothing ran again
    rerun = json.loads((tmp_path / "results").glob("*-tiny-stacks.json").__next__().read_text())
    assert rerun["runs"] == payload["runs"]


def test_benchmark_of_a_trained_pipeline_measures_it_and_its_runtime_beside_the_raw_encoder(
    trained_nlp, tiny_transformer, tmp_path
):
    corpus = tiny_corpus(tmp_path)
    trained_nlp.to_disk(tmp_path / "pipeline")
    command = [sys.executable, str(BENCH), "--backbone", str(tiny_transformer), "--corpus", str(corpus), "--quick"]
    systems = "spacy-wnut,spacy-wnut[runtime],raw-encoder-forward"
    command += ["--pipeline", str(tmp_path / "pipeline"), "--systems", systems]
    command += ["--results", str(tmp_path / "results"), "--workdir", str(tmp_path / "work" / "not-yet-made")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = (tmp_path / "results").glob("*-quick.json")
    results = json.loads(json_path.read_text())["results"]
    assert set(results) == {"spacy-wnut", "spacy-wnut[runtime]", "raw-encoder-forward"}
    assert results["spacy-wnut"]["train_seconds"] is None
    assert results["spacy-wnut"]["pipeline"] == str((tmp_path / "pipeline").resolve())
    assert results["spacy-wnut[runtime]"]["test"] == results["spacy-wnut"]["test"]  # fp32: the same entities
    assert all(results[name]["words_per_second"]["1"] > 0 for name in results)


def test_chunking_benchmark_compares_each_setting_with_one_call(trained_nlp, tmp_path):
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))]
    DocBin(docs=docs).to_disk(tmp_path / "test.spacy")
    trained_nlp.to_disk(tmp_path / "pipeline")
    script = Path(__file__).parents[2] / "bench" / "chunking.py"
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
    script = Path(__file__).parents[2] / "bench" / "serve.py"
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


def test_serve_soak_answers_every_request_beside_idle_and_slow_connections(model_dir, tmp_path):
    pytest.importorskip("aiohttp")
    script = Path(__file__).parents[2] / "bench" / "serve.py"
    command = [sys.executable, str(script), "--model", str(model_dir), "--quick", "--requests", "0", "--soak", "8"]
    command += ["--server-args", "--read-timeout 2 --threads 1", "--results", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = tmp_path.glob("*-serve-quick.json")
    soak = json.loads(json_path.read_text())["soak"]
    assert soak["load"]["requests"] > 0 and soak["load"]["errors"] == 0 and soak["ready_after"]
    assert soak["hostile"]["idle_closed_by_server"] >= 200 and soak["hostile"]["slow_408"] >= 2
    assert "Soak, 8 s" in json_path.with_suffix(".md").read_text()


CONFIG = """
[paths]
transformer = "org/encoder"

[components]

[components.wnut_ner]
factory = "wnut_ner"
entity_bias = {bias}

[components.wnut_ner.model]

[components.wnut_ner.model.transformer]
name = ${{paths.transformer}}
"""


def _finished_project(root: Path) -> Path:
    """The files a finished `spacy project run all` leaves, with step times 100 s (train) and 50 s (train-final)."""
    seqeval = {"seqeval": {"p": 0.6, "r": 0.4, "f": 0.48, "per_type": {"person": {"p": 0.7, "r": 0.5, "f": 0.58}}}}
    files = {
        "corpus/test.spacy": (b"", 1000),
        "training/model-best/meta.json": (
            json.dumps({"performance": {"ents_f": 0.61}, "spacy_wnut_training": {"step": 800}}),
            1090,
        ),
        "training/model-last/meta.json": ("{}", 1100),
        "training/model-tuned/meta.json": ("{}", 1110),
        "training/model-tuned/config.cfg": (CONFIG.format(bias=0.25), 1110),
        "training/model-final/meta.json": (json.dumps({"spacy_wnut_training": {"step": 800}}), 1160),
        "metrics/test_seqeval.json": (json.dumps(seqeval), 1170),
        "metrics/final_test_seqeval.json": (json.dumps(seqeval), 1170),
        "packages/en_x-0.1.0/dist/en_x-0.1.0-py3-none-any.whl": (b"x" * 2_000_000, 1200),
    }
    for name, (content, mtime) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        os.utime(path, (mtime, mtime))
    return root


def test_project_summary_reads_what_each_step_left(tmp_path):
    project = _finished_project(tmp_path / "project")
    script = Path(__file__).parents[2] / "bench" / "project_run.py"
    out = tmp_path / "results" / "summary"
    result = subprocess.run(
        [sys.executable, str(script), str(project), "--out", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    [run] = json.loads(out.with_suffix(".json").read_text())["runs"]
    assert run["backbone"] == "org/encoder" and run["entity_bias"] == 0.25 and run["best_step"] == 800
    assert run["train_seconds"] == 100 and run["train_final_seconds"] == 50 and run["wheel_mb"] == 2.0
    assert set(run["test"]) == {"model-tuned", "model-final"}  # no run-time metrics written: no row
    assert (
        "| encoder | model-tuned | 0.600 | 0.400 | 0.480 | 0.610 (800) | 0.25 | 100 |"
        in out.with_suffix(".md").read_text()
    )


def test_project_summary_names_the_missing_output(tmp_path):
    project = _finished_project(tmp_path / "project")
    (project / "metrics" / "final_test_seqeval.json").unlink()
    script = Path(__file__).parents[2] / "bench" / "project_run.py"
    result = subprocess.run(
        [sys.executable, str(script), str(project), "--out", str(tmp_path / "s")], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "final_test_seqeval.json: not found" in result.stderr
    assert not (tmp_path / "s.json").exists()


def test_distillation_study_scores_teacher_and_students_and_reuses_the_targets(tiny_transformer, tmp_path):
    from ..util import train_shipped_config

    corpus = tiny_corpus(tmp_path)
    (tmp_path / "teacher").mkdir()
    teacher = train_shipped_config(tiny_transformer, tmp_path / "teacher", max_steps=20).parent
    settings = {
        "training.max_steps": 10,
        "training.eval_frequency": 5,
        "training.max_epochs": 0,
        "training.optimizer.learn_rate.initial_rate": 0.001,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "components.wnut_ner.model.freeze_embeddings": "false",
        "components.wnut_ner.distill_alpha": 0.7,
        "training.logger.progress_bar": "null",
    }
    command = [sys.executable, str(BENCH.parent / "distill.py"), "--teacher", f"tiny={teacher}"]
    command += ["--student-backbone", str(tiny_transformer), "--corpus", str(corpus), "--seeds", "0"]
    command += ["--work", str(tmp_path / "work"), "--output", str(tmp_path / "results" / "distill")]
    command += set_options(settings)
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    payload = json.loads((tmp_path / "results" / "distill.json").read_text())
    assert payload["best_teacher"] == "tiny" and payload["targets"]["inputs"][0]["docs"] == 4
    agreement = payload["targets"]["agreement"]
    assert set(agreement) == {"train/00-train.spacy", "dev/01-dev.spacy"}
    assert all(0.0 <= value <= 1.0 for row in agreement.values() for value in row.values())
    assert sorted(payload["distilled"]) == sorted(payload["plain"]) == ["0"]
    for kind in ("distilled", "plain"):
        for run in payload[kind].values():
            assert run["best_step"] in (5, 10) and 0.0 <= run["test"]["f"] <= 1.0 and run["train_seconds"] > 0
    config = spacy.util.load_config(tmp_path / "work" / "tiny" / "default" / "seed0" / "model-best" / "config.cfg")
    assert config["components"]["wnut_ner"]["distill_alpha"] == pytest.approx(0.7)
    assert set(payload["speed"]["words_per_second"]) == {
        "student onnx",
        "student onnx-int8",
        "teacher onnx",
        "teacher onnx-int8",
    }
    assert sorted(payload["int8"]) == ["0"] and payload["speed"]["speed_sentences"] == 4
    table = (tmp_path / "results" / "distill.md").read_text()
    assert "share of the teacher's lead closed" in table and "| 0 | distilled |" in table
    # A rerun trains nothing (every output is there); the plain seed taken from an earlier stack study.
    earlier = {"runs": {"0.4": {"0": {**payload["plain"]["0"], "train_seconds": 12.0, "order": 1}}}}
    (tmp_path / "stacks.json").write_text(json.dumps(earlier))
    recorded = ["--plain-recorded", f"{tmp_path / 'stacks.json'}:0.4"]
    student = tmp_path / "work" / "tiny" / "default" / "seed0" / "model-best" / "meta.json"
    trained = student.stat().st_mtime_ns
    again = subprocess.run([*command, "--no-speed", *recorded], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((tmp_path / "results" / "distill.json").read_text())
    assert student.stat().st_mtime_ns == trained and rerun["distilled"] == payload["distilled"]
    assert rerun["plain"]["0"]["train_seconds"] == 12.0 and rerun["plain"]["0"]["recorded"]
    assert "| 0 | plain (recorded) |" in (tmp_path / "results" / "distill.md").read_text()


def test_teacher_study_without_model_final(tiny_transformer, tmp_path):
    corpus = tiny_corpus(tmp_path)
    command = [sys.executable, str(BENCH.parent / "teachers.py"), "--backbone", str(tiny_transformer)]
    command += ["--corpus", str(corpus), "--seeds", "0", "--no-final", "--no-targets", "--work", str(tmp_path / "w")]
    command += ["--output", str(tmp_path / "teachers")]
    command += set_options(
        {
            "training.max_steps": 2,
            "training.max_epochs": 0,
            "training.eval_frequency": 2,
            "training.logger.progress_bar": "null",
        }
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    payload = json.loads((tmp_path / "teachers.json").read_text())
    assert payload["seeds"]["0"]["final_test"] is None and not (tmp_path / "w" / "seed0" / "model-final").exists()
    assert sorted(payload["summary"]) == ["tuned_dev_f", "tuned_test_f"] and "targets" not in payload
    table = (tmp_path / "teachers.md").read_text()
    assert table.splitlines()[4].endswith(" | – |") and "model-final test F1:" not in table


def test_teacher_study_trains_tunes_retrains_and_cross_fits(tiny_transformer, tmp_path):
    corpus = tiny_corpus(tmp_path, copies=3)
    settings = {
        "training.max_steps": 6,
        "training.eval_frequency": 3,
        "training.max_epochs": 0,
        "training.logger.progress_bar": "null",
    }
    command = [sys.executable, str(BENCH.parent / "teachers.py"), "--backbone", str(tiny_transformer)]
    command += ["--corpus", str(corpus), "--seeds", "0", "--folds", "2", "--jobs", "2"]
    command += ["--work", str(tmp_path / "work"), "--output", str(tmp_path / "results" / "teachers")]
    command += set_options(settings)
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    payload = json.loads((tmp_path / "results" / "teachers.json").read_text())
    assert sorted(payload["seeds"]) == ["0"] and sorted(payload["folds"]) == ["0", "1"]
    for run in payload["seeds"].values():
        assert run["best_step"] in (3, 6) and run["train_seconds"] > 0 and run["final_seconds"] > 0
        assert all(0.0 <= run[key]["f"] <= 1.0 for key in ("dev", "test", "final_test"))
    assert payload["summary"]["final_test_f"]["n"] == 1 and payload["best_seed"] == 0
    # Every training doc is labelled by the one fold teacher that did not train on it.
    oof = tmp_path / "work" / "out-of-fold" / "soft-targets"
    vocab = spacy.blank("en").vocab
    held_out = [list(DocBin().from_disk(path).get_docs(vocab)) for path in sorted((oof / "train").glob("*.spacy"))]
    train_texts = [doc.text for doc in DocBin().from_disk(corpus / "train.spacy").get_docs(vocab)]
    assert [[doc.text for doc in docs] for docs in held_out] == [train_texts[0::2], train_texts[1::2]]
    manifest = json.loads((oof / "soft-targets.json").read_text())
    teachers = [m["teacher"]["pipeline"] for m in manifest["out_of_fold"]]
    assert teachers == [str(tmp_path / "work" / f"fold{k}" / "model-tuned") for k in (0, 1)]
    assert set(payload["out_of_fold"]["agreement"]) == {"train/00-heldout-0.spacy", "train/01-heldout-1.spacy"}
    assert payload["targets"]["manifest"]["inputs"][0]["docs"] == 12
    table = (tmp_path / "results" / "teachers.md").read_text()
    assert "model-final − model-tuned" in table and "| out-of-fold |" in table
    # A rerun trains and scores nothing again.
    made = [tmp_path / "work" / "seed0" / "model-final" / "meta.json"]
    made += [tmp_path / "work" / f"fold{k}" / "targets" / "soft-targets" / "soft-targets.json" for k in (0, 1)]
    stamps = [path.stat().st_mtime_ns for path in made]
    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [path.stat().st_mtime_ns for path in made] == stamps
    # Other settings on the same work folder are refused, naming what changed.
    other = subprocess.run([*command[:-1], "training.max_steps=7"], capture_output=True, text=True, timeout=900)
    assert other.returncode != 0 and "other settings (sets)" in other.stderr
    assert json.loads((tmp_path / "results" / "teachers.json").read_text())["seeds"] == payload["seeds"]
    # A training without its finish mark (as after a stop midway: spaCy has written model-best at its first
    # evaluation) is trained again, and what was made from the old model is made again; the finished ones are kept.
    (tmp_path / "work" / "fold1" / "trained.json").unlink()
    fold1 = tmp_path / "work" / "fold1" / "model-best" / "meta.json"
    fold1_stamp = fold1.stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert fold1.stat().st_mtime_ns != fold1_stamp and (tmp_path / "work" / "fold1" / "trained.json").is_file()
    assert [path.stat().st_mtime_ns for path in made[:2]] == stamps[:2]
    assert made[2].stat().st_mtime_ns != stamps[2]
    # Students on the out-of-fold targets, the teachers' rows from the study's results.
    command = [sys.executable, str(BENCH.parent / "distill.py"), "--targets", f"oof={oof}"]
    command += ["--teachers-from", str(tmp_path / "results" / "teachers.json"), "--no-speed"]
    # The plain student: the teacher seed's own output (the same tiny backbone, config and settings).
    command += ["--plain", f"0={tmp_path / 'work' / 'seed0'}"]
    command += ["--student-backbone", str(tiny_transformer), "--corpus", str(corpus), "--seeds", "0"]
    command += ["--work", str(tmp_path / "students"), "--output", str(tmp_path / "results" / "oof")]
    command += set_options(settings)
    students = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert students.returncode == 0, students.stdout[-3000:] + students.stderr[-3000:]
    oof_result = json.loads((tmp_path / "results" / "oof.json").read_text())
    assert set(oof_result["teachers"]) == {"seed 0"} and oof_result["targets"]["name"] == "oof"
    assert oof_result["best_teacher"] == "seed 0" and oof_result["plain"]["0"]["test"] == payload["seeds"]["0"]["test"]
    config = spacy.util.load_config(tmp_path / "students" / "oof" / "default" / "seed0" / "config.cfg")
    assert config["corpora"]["train"]["@readers"] == "spacy_wnut.SoftTargetCorpus.v1"
    assert config["paths"]["train"] == str((oof / "train").resolve())
    assert (
        0.0 <= oof_result["distilled"]["0"]["test"]["f"] <= 1.0
        and "targets oof" in (tmp_path / "results" / "oof.md").read_text()
    )
