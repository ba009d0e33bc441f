"""A trained pipeline as an installable package: `spacy package` with our meta, installed with
pip (no dependencies, no index) and loaded by name, offline, with identical entities."""

import json
import os
import subprocess
import sys

import srsly
from spacy.tokens import DocBin

from spacy_wnut.tools.model_card import write_package_meta
from spacy_wnut.tools.scoring import run_evaluation

from ..util import TRAIN_DATA, ents_of, train_examples

TEXTS = [text for text, _ in TRAIN_DATA] + ["Tom Hanks loves New York"]


def test_a_packaged_pipeline_installs_and_loads_by_name_offline(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp)]).to_disk(tmp_path / "test.spacy")
    run_evaluation(tmp_path / "model", tmp_path / "test.spacy", tmp_path / "scores.json")
    (tmp_path / "packages").mkdir()
    write_package_meta(
        tmp_path / "model",
        tmp_path / "scores.json",
        tmp_path / "meta.json",
        name="wnut_test",
        version="0.0.1",
        backbone="tiny-test-bert",
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(tmp_path / "model"),
            str(tmp_path / "packages"),
            "--meta-path",
            str(tmp_path / "meta.json"),
            "--build",
            "wheel",
            "--force",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "packages" / "en_wnut_test-0.0.1" / "dist").glob("*.whl")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(tmp_path / "site"),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    code = (
        "import json, spacy\n"
        "nlp = spacy.load('en_wnut_test')\n"
        f"print(json.dumps([[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe({TEXTS!r})]))\n"
        "print(json.dumps(nlp.meta))\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(tmp_path / "site"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf-home"),
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr
    entities, meta = (json.loads(line) for line in loaded.stdout.strip().splitlines()[-2:])
    assert [[tuple(e) for e in doc] for doc in entities] == ents_of(trained_nlp.pipe(TEXTS))
    assert meta["name"] == "wnut_test" and meta["license"] == "CC BY 4.0"
    assert meta["performance"]["ents_f"] == 1.0 and set(meta["performance"]["ents_per_type"]) == {
        "corporation",
        "creative-work",
        "location",
        "person",
    }
    assert any("WNUT 17" in source["name"] for source in meta["sources"])
    assert any(r.startswith("spacy-wnut[train]>=") for r in meta["requirements"])  # a torch encoder inside
    assert not any(r.startswith("spacy-transformers") for r in meta["requirements"])
    card = (tmp_path / "packages" / "en_wnut_test-0.0.1" / "README.md").read_text()
    assert "WNUT 17" in card and "CC BY 4.0" in card and "tiny-test-bert" in card


def test_package_meta_needs_evaluate_scores(trained_nlp, tmp_path):
    import pytest

    trained_nlp.to_disk(tmp_path / "model")
    srsly.write_json(tmp_path / "scores.json", {"ents_f": 1.0})
    with pytest.raises(ValueError, match="scores.json: not the JSON of `spacy wnut evaluate --output`"):
        write_package_meta(tmp_path / "model", tmp_path / "scores.json", tmp_path / "meta.json")
    assert not (tmp_path / "meta.json").exists()


def test_the_install_brings_what_spacy_package_builds_wheels_with():
    """`spacy package --build wheel` (project.yml's package step) needs `build`: `[train]` must bring it."""
    import configparser
    import importlib.util

    from ..util import ROOT

    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    train = parser["options.extras_require"]["train"]
    assert any(line.strip().startswith("build") for line in train.splitlines())
    assert importlib.util.find_spec("build") is not None


def test_package_meta_finds_the_component_by_factory(trained_nlp, tmp_path):
    from spacy_wnut.tools.model_card import package_meta

    from ..util import save_renamed

    model = save_renamed(trained_nlp, tmp_path / "model", "ner")
    scores = {"seqeval": {"p": 1.0, "r": 1.0, "f": 1.0, "per_type": {}}, "docs": 4}
    meta = package_meta(model, scores, backbone="tiny-test-bert")
    assert meta["spacy_wnut"]["entity_bias"] == 0.0 and meta["spacy_wnut"]["backbone"] == "tiny-test-bert"
