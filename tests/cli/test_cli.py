"""The command line, both spellings (`spacy wnut ...`, `python -m spacy_wnut ...`): commands listed,
options validated before any work, and every user error one line naming the file, line or option."""

import shutil
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin

from ..util import TRAIN_DATA, train_examples

COMMANDS = [
    "fetch",
    "convert",
    "convert-hf",
    "evaluate",
    "tune-bias",
    "report",
    "annotate",
    "import-hf",
    "export-hf",
    "train-final",
    "package-meta",
]
SPELLINGS = {
    "spacy wnut": [sys.executable, "-m", "spacy", "wnut"],
    "python -m spacy_wnut": [sys.executable, "-m", "spacy_wnut"],
}


def run(spelling, *args, **kwargs):
    return subprocess.run(SPELLINGS[spelling] + [str(a) for a in args], capture_output=True, text=True, **kwargs)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys):
    """`python -m spacy_wnut ARGS` in this process (the same `main`), for the many error paths."""
    from spacy_wnut.cli import main

    def call(*args, cwd=None):
        import os

        old = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            code = main([str(a) for a in args])
        finally:
            os.chdir(old)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return call


@pytest.fixture(scope="module")
def gold(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("gold") / "gold.spacy"
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp, TRAIN_DATA)]).to_disk(path)
    return path


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_help_lists_every_command(spelling):
    result = run(spelling, "--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout, command


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_both_spellings_run_a_command(spelling, model_dir, gold, tmp_path):
    result = run(spelling, "evaluate", model_dir, gold, "--output", tmp_path / "m.json", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.json").exists() and "seqeval" in result.stdout
    assert "Failed to load" not in result.stderr and "KernelPreference" not in result.stderr


@pytest.mark.parametrize(
    "args,option",
    [
        (["annotate", "m", "in.jsonl", "out.jsonl", "--batch-size", "0"], "--batch-size"),
        (["annotate", "m", "in.jsonl", "out.jsonl", "--n-process", "0"], "--n-process"),
        (["evaluate", "m", "d.spacy", "--batch-size", "-1"], "--batch-size"),
        (["report", "m", "d.spacy", "o.html", "--worst", "-1"], "--worst"),
        (["convert", "a.conll", "b.spacy", "--n-sents", "0"], "--n-sents"),
    ],
)
def test_numeric_options_are_validated_before_anything_runs(cli, args, option, tmp_path):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and option in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "grid,problem", [("0,nan", "finite"), ("0,inf", "finite"), ("a,b", "not a comma-separated list"), (",", "empty")]
)
def test_bad_grids_are_named(cli, model_dir, gold, tmp_path, grid, problem):
    result = cli("tune-bias", model_dir, gold, tmp_path / "out", "--grid", grid)
    assert result.returncode == 1 and "--grid" in result.stderr and problem in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture
def bad_corpora(tmp_path):
    nlp = spacy.blank("en")
    DocBin().to_disk(tmp_path / "empty.spacy")
    DocBin(docs=[nlp("no entity annotation at all")]).to_disk(tmp_path / "plain.spacy")
    (tmp_path / "empty-dir").mkdir()
    return {
        "empty.spacy": "holds no documents",
        "plain.spacy": "no document has entity annotation",
        "empty-dir": "directory holds no .spacy files",
        "missing.spacy": "no such file or directory",
    }


@pytest.mark.parametrize("command", ["evaluate", "report", "tune-bias"])
def test_scoring_commands_name_a_corpus_they_cannot_score(cli, command, model_dir, bad_corpora, tmp_path):
    for name, problem in bad_corpora.items():
        extra = [tmp_path / f"out-{command}"] if command != "evaluate" else []
        result = cli(command, model_dir, tmp_path / name, *extra)
        assert result.returncode == 1, (name, result.stderr)
        assert f"{tmp_path / name}: {problem}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / f"out-{command}").exists()


def test_outputs_are_checked_before_the_long_work(cli, model_dir, gold, tmp_path):
    (tmp_path / "plain").write_text("x")
    result = cli("report", model_dir, gold, tmp_path / "plain" / "r.html")
    assert result.returncode == 1 and "plain is a file, not a directory" in result.stderr
    result = cli("annotate", model_dir, gold, tmp_path / "o.txt")
    assert result.returncode == 1 and "'txt' is not a supported output format" in result.stderr


def test_unsupported_output_format_is_named_not_guessed(cli, model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    result = cli("annotate", model_dir, tmp_path / "in.txt", tmp_path / "out")
    assert result.returncode == 1 and "cannot tell the output format (no suffix)" in result.stderr


@pytest.mark.parametrize(
    "damage,problem",
    [
        ("no-cfg", "wnut_ner/cfg: missing"),
        ("invalid-cfg", "wnut_ner/cfg: not valid JSON"),
        ("truncated-model", "cannot load the saved weights"),
        ("no-config", "config.cfg: missing"),
    ],
)
def test_a_damaged_pipeline_is_named_at_load_time(cli, model_dir, tmp_path, damage, problem):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    if damage == "no-cfg":
        (broken / "wnut_ner" / "cfg").unlink()
    elif damage == "invalid-cfg":
        (broken / "wnut_ner" / "cfg").write_text('{"labels": ["person"')
    elif damage == "truncated-model":
        data = (broken / "wnut_ner" / "model").read_bytes()
        (broken / "wnut_ner" / "model").write_bytes(data[: len(data) // 3])
    else:
        (broken / "config.cfg").unlink()
    (tmp_path / "in.txt").write_text("Tom Hanks\n")
    result = cli("annotate", broken, tmp_path / "in.txt", tmp_path / "out.jsonl")
    assert result.returncode == 1 and problem in result.stderr and str(broken) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.jsonl").exists()
    assert not (tmp_path / "out.jsonl.partial").exists()  # the next run is not blocked by an empty partial


def test_a_programming_error_is_not_dressed_up_as_user_error(monkeypatch):
    from spacy_wnut import cli

    @cli.user_errors
    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        broken()


def test_an_option_that_is_neither_the_commands_nor_a_config_override_is_one_line(cli, tmp_path):
    result = cli(
        "train-final", "c.cfg", tmp_path / "sel", tmp_path / "out", "--train", "t", "--dev", "d", "--bogus", "1"
    )
    assert result.returncode == 2 and "No such option '--bogus'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_bug_like_value_error_inside_a_command_keeps_its_traceback(cli, model_dir, gold, monkeypatch):
    import numpy

    def broken(*args, **kwargs):
        return numpy.zeros(-1)  # numpy's ValueError: a bug, not something the user can fix

    monkeypatch.setattr("spacy_wnut.tools.scoring.evaluate", broken)
    with pytest.raises(ValueError, match="negative dimensions"):
        cli("evaluate", model_dir, gold, "--no-progress")


@pytest.mark.parametrize(
    "extra,named",
    [
        (["--resume", "--n-process", "2"], "--ray does not take --n-process, --resume"),
        (["--skip-bad-lines"], "--ray does not take --skip-bad-lines (--skip-bad-lines: bad records always go"),
        (["--keep-entities", "--input-format", "jsonl"], "--ray does not take --input-format, --keep-entities"),
    ],
)
def test_options_that_do_nothing_with_ray_are_refused_by_name(cli, tmp_path, extra, named):
    result = cli("annotate", "model", "in.jsonl", tmp_path / "out", "--ray", *extra)
    assert result.returncode == 1 and named in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_ray_options_without_ray_are_refused_by_name(cli, tmp_path):
    result = cli("annotate", "model", "in.jsonl", tmp_path / "out.jsonl", "--actors", "1", "--ray-address", "auto")
    assert result.returncode == 1 and "--ray-address, --actors only apply with --ray" in result.stderr


@pytest.mark.parametrize("command", ["evaluate", "report", "tune-bias", "train-final"])
def test_scoring_and_training_commands_take_spacys_gpu_and_code_options(cli, command):
    result = cli(command, "--help")
    assert result.returncode == 0
    for option in ("--gpu-id", "-g", "--code", "-c"):
        assert option in result.stdout, (command, option)


def test_code_imports_registered_functions_before_the_pipeline_loads(cli, model_dir, gold, tmp_path):
    marker = tmp_path / "imported"
    (tmp_path / "functions.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n")
    result = cli("evaluate", model_dir, gold, "--code", tmp_path / "functions.py", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "yes"
    missing = cli("evaluate", model_dir, gold, "-c", tmp_path / "nope.py")
    assert missing.returncode == 1 and f"--code {tmp_path / 'nope.py'}: no such file" in missing.stderr


def test_evaluate_takes_o_for_its_output(cli, model_dir, gold, tmp_path):
    result = cli("evaluate", model_dir, gold, "-o", tmp_path / "m.json", "--no-progress")
    assert result.returncode == 0 and (tmp_path / "m.json").exists(), result.stderr
    again = cli("evaluate", model_dir, gold, "-o", tmp_path / "m.json", "--no-progress")
    assert again.returncode == 1 and "m.json: already exists; pass --overwrite" in again.stderr


@pytest.fixture
def selected_pipeline(trained_nlp, tmp_path):
    """A pipeline as `spacy train` selects it: the training step recorded in its meta."""
    trained_nlp.meta["spacy_wnut_training"] = {"step": 50, "epoch": 3}
    trained_nlp.to_disk(tmp_path / "selected")
    del trained_nlp.meta["spacy_wnut_training"]
    return tmp_path / "selected"


TRAIN_FINAL_MISTAKES = {
    "missing config": ([], "missing.cfg: no such config file"),
    "max_steps not a number": (["--training.max_steps", "abc"], "training.optimizer.learn_rate.max_steps"),
    "unknown override": (["--training.max_stepz", "5"], "--training.max_stepz: no such setting in"),
    "config without the component": ([], "no [components.wnut_ner] with factory wnut_ner"),
    "empty DocBin": ([], "--train: no documents to train on"),
    "not a DocBin in the folder": ([], "not a readable spaCy DocBin"),
}


@pytest.mark.parametrize("case", list(TRAIN_FINAL_MISTAKES))
def test_train_final_mistakes_are_one_line(cli, selected_pipeline, tiny_transformer, tmp_path, case):
    from pathlib import Path

    extra, message = TRAIN_FINAL_MISTAKES[case]
    config = Path(__file__).parents[2] / "configs" / "distilbert.cfg"
    if case == "missing config":
        config = tmp_path / "missing.cfg"
    elif case == "config without the component":
        text = config.read_text().replace("components.wnut_ner", "components.other").replace('"wnut_ner"', '"other"')
        config = tmp_path / "other.cfg"
        config.write_text(text)
    train = tmp_path / "train"
    train.mkdir()
    if case == "not a DocBin in the folder":
        DocBin(docs=[spacy.blank("en")("Tom Hanks")]).to_disk(train / "a.spacy")
        (train / "b.spacy").write_bytes(b"\x89PNG not a DocBin")
    else:
        DocBin().to_disk(train / "a.spacy")
    result = cli(
        "train-final", config, selected_pipeline, tmp_path / "out", "--train", train, "--dev", train / "a.spacy",
        "--paths.transformer", tiny_transformer, *extra,
    )  # fmt: skip
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_train_final_past_the_schedules_end_warns(selected_pipeline, tiny_transformer, tmp_path, monkeypatch):
    from pathlib import Path

    from spacy_wnut.training.train_final import train_final

    class Trained(Exception):
        pass

    def fake_train(*args, **kwargs):
        raise Trained  # what comes before training is what is tested

    monkeypatch.setattr("spacy.cli.train.train", fake_train)
    DocBin(docs=[spacy.blank("en")("Tom Hanks")]).to_disk(tmp_path / "one.spacy")
    config = Path(__file__).parents[2] / "configs" / "distilbert.cfg"
    overrides = {"paths.transformer": str(tiny_transformer), "training.optimizer.learn_rate.total_steps": 40}
    with pytest.warns(UserWarning, match=r"the selected step 50 is past the end of .* schedule \(40 steps\)"):
        with pytest.raises(Trained):
            train_final(config, selected_pipeline, tmp_path / "out", [tmp_path / "one.spacy"], tmp_path / "one.spacy",
                        overrides=overrides)  # fmt: skip


def test_export_tasks_with_an_unknown_selection_or_a_json_array_into_jsonl_is_one_line(cli, model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("Tom Hanks\n")
    result = cli("export-tasks", model_dir, tmp_path / "in.txt", tmp_path / "t.json", "--format", "label-studio",
                 "--select", "bogus")  # fmt: skip
    assert result.returncode == 1 and "--select must be one of uncertain, random, all, got 'bogus'" in result.stderr
    result = cli("export-tasks", model_dir, tmp_path / "in.txt", tmp_path / "t.jsonl", "--format", "label-studio")
    assert result.returncode == 1 and "t.jsonl: --format label-studio writes one JSON array; name the output .json" in (
        result.stderr
    )
    result = cli("export-tasks", model_dir, tmp_path / "in.txt", tmp_path / "t.json", "--format", "doccano")
    assert result.returncode == 1 and "--format doccano writes JSON lines; name the output .jsonl" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_a_garbage_pipeline_config_is_one_line_naming_it(cli, model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "model")
    (tmp_path / "model" / "config.cfg").write_text("[nlp\nlang = en\n")
    (tmp_path / "in.txt").write_text("Tom Hanks\n")
    result = cli("annotate", tmp_path / "model", tmp_path / "in.txt", tmp_path / "out.jsonl", "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'model' / 'config.cfg'}: not a valid pipeline config" in result.stderr


def test_fetch_into_a_file_or_a_read_only_folder_is_one_line(cli, tmp_path, read_only_dir):
    (tmp_path / "a-file").write_text("")
    result = cli("fetch", tmp_path / "a-file", "--mirror", tmp_path)
    assert result.returncode == 1 and f"{tmp_path / 'a-file'}: cannot write the WNUT 17 files there (is a file" in (
        result.stderr
    )
    result = cli("fetch", read_only_dir / "assets", "--mirror", tmp_path)
    assert result.returncode == 1 and f"{read_only_dir / 'assets'}: cannot write the WNUT 17 files there" in (
        result.stderr
    )


def test_convert_names_binary_input_as_binary(cli, tmp_path):
    (tmp_path / "train.conll").write_bytes("Tom\tB-person\nHanks\tI-person\n".encode("utf-16"))
    result = cli("convert", tmp_path / "train.conll", tmp_path / "out.spacy")
    assert result.returncode == 1 and "the file looks binary" in result.stderr and "line ending" not in result.stderr
