"""Every shipped config loads and validates; project.yml is well-formed."""
from pathlib import Path

import pytest
import srsly
from spacy import util

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.cfg"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_validates(path, tiny_transformer):
    config = util.load_config(path, overrides={"paths.transformer": str(tiny_transformer)})
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["wnut_ner"]
    assert nlp.config.interpolate()["components"]["wnut_ner"]["model"]["transformer"]["name"] == str(tiny_transformer)


def test_default_backbone_is_distilbert():
    config = util.load_config(ROOT / "configs" / "distilbert.cfg")
    assert config["paths"]["transformer"] == "distilbert/distilbert-base-uncased"


def test_project_workflow_runs_every_step_with_checksummed_assets():
    project = srsly.read_yaml(ROOT / "project.yml")
    commands = {c["name"]: c for c in project["commands"]}
    assert project["workflows"]["all"] == ["fetch", "convert", "train", "tune", "evaluate", "report"]
    assert all(name in commands for name in project["workflows"]["all"])
    assert "training/model-best" in commands["train"]["outputs"]
    assert {"transformer", "mirror"} <= set(project["vars"])
    for asset in project["assets"]:
        assert asset["url"].startswith("https://") and len(asset["checksum"]) == 32


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash")[1:3]]
    assert len(blocks) == 2, "README starts with two commands: main job, then tests"
    assert "spacy project run all" in blocks[0]
    assert blocks[1] in ci_lines
