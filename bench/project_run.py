"""What finished `spacy project run all` directories measured, side by side (e.g. one per backbone).

    python bench/project_run.py PROJECT [PROJECT ...] --out STEM

For each project directory (after `spacy project run all`, any `--vars.transformer`) it reads what
the steps left on disk, nothing else: the backbone and `entity_bias` from the configs, dev F1 and
step of `training/model-best`, test P/R/F1 overall and per type of model-tuned, model-final and the
run-time pipeline (`metrics/*seqeval.json`), the seconds of `train` and `train-final` (from the
modification times of their inputs and outputs), and the size of the packaged wheel. Writes
STEM.json and STEM.md; refuses a directory where a step's output is missing.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

from spacy.util import load_config

from results_files import write_results

METRICS = {"model-tuned": "test_seqeval.json", "model-final": "final_test_seqeval.json"}
RUNTIME_METRICS = "runtime_test_seqeval.json"
TYPES = ["person", "location", "corporation", "creative-work", "group", "product"]


class MissingOutput(Exception):
    """A step of the project has not written what this script reads."""


def _need(path: Path) -> Path:
    if not path.exists():
        raise MissingOutput(f"{path}: not found (has `spacy project run all` finished in that project?)")
    return path


def _json(path: Path) -> Dict:
    return json.loads(_need(path).read_text())


def _wnut_config(model: Path) -> Dict:
    config = load_config(_need(model / "config.cfg"), interpolate=True)
    [name] = [n for n, c in config["components"].items() if c.get("factory") == "wnut_ner"]
    return config["components"][name]


def _scores(path: Path) -> Dict:
    seqeval = _json(path)["seqeval"]
    per_type = {t: seqeval["per_type"][t]["f"] for t in TYPES if t in seqeval["per_type"]}
    return {"p": seqeval["p"], "r": seqeval["r"], "f": seqeval["f"], "per_type_f": per_type}


def _seconds(start: Path, end: Path) -> float:
    return _need(end).stat().st_mtime - _need(start).stat().st_mtime


def _wheel_mb(project: Path) -> Optional[float]:
    wheels = sorted((project / "packages").glob("*/dist/*.whl"))
    return wheels[-1].stat().st_size / 1e6 if wheels else None


def summarise(project: Path) -> Dict:
    """What one finished project run measured.

    project (Path): the project directory.
    RETURNS (Dict): backbone, dev, test scores per pipeline, step seconds, wheel MB.
    """
    training, metrics = project / "training", project / "metrics"
    best = _json(training / "model-best" / "meta.json")
    tuned = _wnut_config(training / "model-tuned")  # model-best's config, with the bias tune-bias picked
    test = {name: _scores(metrics / file) for name, file in METRICS.items()}
    if (metrics / RUNTIME_METRICS).exists():
        test["model-runtime"] = _scores(metrics / RUNTIME_METRICS)
    return {
        "project": str(project.resolve()),
        "backbone": str(tuned["model"]["transformer"]["name"]),
        "dev_f_model_best": best["performance"]["ents_f"],
        "best_step": best["spacy_wnut_training"]["step"],
        "entity_bias": tuned["entity_bias"],
        "final_steps": _json(training / "model-final" / "meta.json")["spacy_wnut_training"]["step"],
        "test": test,
        # `convert` writes test.spacy last; `train` ends with model-last, `train-final` with model-final.
        "train_seconds": _seconds(project / "corpus" / "test.spacy", training / "model-last" / "meta.json"),
        "train_final_seconds": _seconds(training / "model-tuned" / "meta.json", training / "model-final" / "meta.json"),
        "wheel_mb": _wheel_mb(project),
    }


def markdown(runs: List[Dict]) -> str:
    """The runs as tables: one row per project and pipeline, then F1 per type."""
    lines = [
        "| backbone | pipeline | test P | test R | test F1 | dev F1 (model-best, step) | entity_bias"
        " | train s | train-final s | wheel MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        name = Path(run["backbone"]).name
        for pipeline, s in run["test"].items():
            extra = ["", "", "", "", ""]
            if pipeline == "model-tuned":
                extra = [f"{run['dev_f_model_best']:.3f} ({run['best_step']})", f"{run['entity_bias']:g}"]
                extra += [f"{run['train_seconds']:,.0f}", "", ""]
            elif pipeline == "model-final":
                wheel = "–" if run["wheel_mb"] is None else f"{run['wheel_mb']:.1f}"
                extra = ["", "", "", f"{run['train_final_seconds']:,.0f} ({run['final_steps']} steps)", wheel]
            lines.append(
                f"| {name} | {pipeline} | {s['p']:.3f} | {s['r']:.3f} | {s['f']:.3f} | " + " | ".join(extra) + " |"
            )
    lines += ["", "Test F1 per type:", "", "| backbone | pipeline | " + " | ".join(TYPES) + " |"]
    lines.append("|---|---|" + "---|" * len(TYPES))
    for run in runs:
        for pipeline, s in run["test"].items():
            cells = [f"{s['per_type_f'].get(t, 0.0):.3f}" for t in TYPES]
            lines.append(f"| {Path(run['backbone']).name} | {pipeline} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("projects", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    try:
        runs = [summarise(project) for project in args.projects]
    except MissingOutput as err:
        sys.exit(f"project_run: {err}")
    write_results(args.out, {"runs": runs}, markdown(runs))


if __name__ == "__main__":
    main()
