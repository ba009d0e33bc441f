"""The run-time pipeline installed as a user installs it: a fresh virtual environment, the spacy-wnut wheel
with its run-time requirements only, the newest transformers 5 beside it, the packaged pipeline loaded by
name, identical entities, and neither torch nor transformers nor spacy-transformers imported by tagging."""

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from spacy.tokens import DocBin

from spacy_wnut.tools.model_card import write_package_meta
from spacy_wnut.tools.runtime_export import export_runtime
from spacy_wnut.tools.scoring import run_evaluation

from ..util import ROOT, TRAIN_DATA, ents_of, train_examples

TEXTS = [text for text, _ in TRAIN_DATA] + ["Tom Hanks loves New York", "NEW YORK!!! @tom http://t.co/x"]
TRAINING_STACK = ("torch", "transformers", "safetensors")
CHECK = """
import json, sys
import spacy
nlp = spacy.load("en_wnut_runtime_test")
ents = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(json.loads(sys.argv[1]))]
loaded = sorted(m for m in {stack!r} if m in sys.modules)
import transformers
print(json.dumps({{"entities": ents, "loaded": loaded, "transformers": transformers.__version__}}))
"""


def run(command, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def package(pipeline: Path, tmp_path: Path) -> Path:
    """`spacy package` of the run-time pipeline with our meta; returns the wheel."""
    docbin = DocBin(docs=[eg.reference for eg in train_examples(__import__("spacy").blank("en"))])
    docbin.to_disk(tmp_path / "test.spacy")
    run_evaluation(pipeline, tmp_path / "test.spacy", tmp_path / "scores.json")
    write_package_meta(pipeline, tmp_path / "scores.json", tmp_path / "meta.json", name="wnut_runtime_test")
    out = tmp_path / "packages"
    out.mkdir()
    command = [sys.executable, "-m", "spacy", "package", pipeline, out, "--meta-path", tmp_path / "meta.json"]
    run([*command, "--build", "wheel", "--force"], timeout=600)
    (wheel,) = out.glob("*/dist/*.whl")
    return wheel


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.venv
def test_runtime_pipeline_installs_beside_transformers_5_and_tags_without_the_training_stack(
    model_dir, trained_nlp, tmp_path
):
    export_runtime(model_dir, tmp_path / "runtime")
    pipeline_wheel = package(tmp_path / "runtime", tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert not [r for r in meta["requirements"] if r.startswith(("spacy-transformers", "transformers", "torch"))]
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT], timeout=600)
    (package_wheel,) = (tmp_path / "dist").glob("spacy_wnut-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    install = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*install, package_wheel, pipeline_wheel, "transformers>=5"], env=env, timeout=900)
    listed = run([python, "-m", "pip", "list", "--format", "json"], env=env).stdout
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
    assert "torch" not in installed and "spacy-transformers" not in installed
    assert int(installed["transformers"].split(".")[0]) >= 5
    code = CHECK.format(stack=TRAINING_STACK)
    checked = run([python, "-c", code, json.dumps(TEXTS)], env={**env, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert [[tuple(e) for e in doc] for doc in result["entities"]] == ents_of(trained_nlp.pipe(TEXTS))
    assert any(result["entities"])


@pytest.mark.parametrize("module", TRAINING_STACK)
def test_loading_a_trainable_pipeline_without_the_training_stack_names_the_extra(model_dir, monkeypatch, module):
    import importlib.util

    from spacy_wnut.errors import MissingExtra
    from spacy_wnut.pipeline.component import load_pipeline

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(MissingExtra, match=rf"trainable pipeline .*needs the package\(s\) {module}.*\[train\]"):
        load_pipeline(model_dir)


def test_spacy_load_of_a_trainable_pipeline_without_torch_names_the_extra(model_dir, monkeypatch):
    """Not only `load_pipeline`: plain `spacy.load` meets the encoder layer, which says what to install."""
    import importlib.util

    import spacy

    from spacy_wnut.errors import MissingExtra

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(MissingExtra, match=r"spacy_wnut\.HFEncoder\.v1 .*needs the package\(s\) torch.*\[train\]"):
        spacy.load(model_dir)
