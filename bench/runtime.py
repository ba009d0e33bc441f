"""The run-time pipeline against the torch pipeline it came from, side by side in one run.

    python bench/runtime.py PIPELINE TEST.spacy OUT_STEM [--quick] [--no-install]

On the trained pipeline (PIPELINE, a torch `wnut_ner`) and the WNUT 17 test
set it measures:
- entities: fp32 run-time vs the torch engine (identical?), F1 of each, int8's cost;
- words/s at batch 1 and 64 of torch, run-time fp32 and run-time int8, interleaved;
- wheel size of each as `spacy package` builds it;
- install footprint (MB of site-packages) of a fresh run-time venv vs a fresh `[train]` venv, and cold
  start (process start to the first doc tagged) of the run-time pipeline in the run-time venv vs the torch
  pipeline in the `[train]` venv (`--no-install`: both in this environment instead).
Writes OUT_STEM.json and OUT_STEM.md. Everything local; pip reads PyPI (or its cache) by package name.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.scorer import get_ner_prf
from spacy.training import Example

from spacy_wnut.tools.runtime_export import export_runtime

from measure import machine_info, plain_copy, read_gold
from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]
FIRST_DOC = """
import sys, time
start = float(sys.argv[2])
import spacy
nlp = spacy.load(sys.argv[1])
nlp("Watching Game of Thrones with @paulwalk in NYC")
print(time.time() - start)
"""


def entities(nlp, docs) -> List[List[tuple]]:
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(docs, batch_size=64)]


def f1(nlp, gold) -> float:
    docs = [plain_copy(doc, nlp.vocab) for doc in gold]
    return get_ner_prf([Example(pred, ref) for pred, ref in zip(nlp.pipe(docs, batch_size=64), gold)])["ents_f"]


def speeds(systems: Dict[str, spacy.Language], gold, repeats: int) -> Dict[str, Dict[str, float]]:
    """Median words/s per system and batch size, the systems interleaved in every repeat."""
    n_words = sum(len(doc) for doc in gold)
    times: Dict[str, Dict[int, List[float]]] = {name: {1: [], 64: []} for name in systems}
    for batch_size in (1, 64):
        for nlp in systems.values():  # warm-up
            list(nlp.pipe([plain_copy(d, nlp.vocab) for d in gold[:32]], batch_size=batch_size))
        for _ in range(repeats):
            for name, nlp in systems.items():
                docs = [plain_copy(d, nlp.vocab) for d in gold]
                start = time.perf_counter()
                for _ in nlp.pipe(docs, batch_size=batch_size):
                    pass
                times[name][batch_size].append(time.perf_counter() - start)
    return {name: {str(b): n_words / statistics.median(t) for b, t in per.items()} for name, per in times.items()}


def wheel_mb(pipeline: Path, work: Path, name: str) -> float:
    out = work / f"packages-{name}"
    out.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(pipeline),
            str(out),
            "--build",
            "wheel",
            "--force",
            "--name",
            name,
            "--version",
            "0.0.1",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("*/dist/*.whl")
    return wheel.stat().st_size / 1e6


def site_packages_mb(env: Path) -> float:
    (site,) = env.glob("lib/python*/site-packages")
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def fresh_env(path: Path, requirements: List[str]) -> Path:
    """A new venv with `requirements` installed (torch's CPU build first, as the README installs it)."""
    venv.create(path, with_pip=True)
    python = path / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if any("[train]" in r for r in requirements):
        subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, *requirements], check=True)
    return python


def footprints(work: Path) -> Dict[str, float]:
    """MB of site-packages of fresh venvs: empty, spaCy alone (the run-time floor), run-time, [train]."""
    wheel = package_wheel(work)
    sizes = {}
    for name, requirements in (
        ("empty", []),
        ("spacy", ["spacy"]),
        ("runtime", [str(wheel)]),
        ("train", [f"{wheel}[train]"]),
    ):
        if requirements:
            fresh_env(work / f"venv-{name}", requirements)
        else:
            venv.create(work / f"venv-{name}", with_pip=True)
        sizes[name] = site_packages_mb(work / f"venv-{name}")
    return sizes


def package_wheel(work: Path) -> Path:
    wheel_dir = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)], check=True
    )
    (wheel,) = wheel_dir.glob("spacy_wnut-*.whl")
    return wheel


def cold_start(python: Path, pipeline: Path, repeats: int) -> float:
    """Median seconds from process start to the first doc tagged."""
    times = []
    for _ in range(repeats):
        done = subprocess.run(
            [str(python), "-c", FIRST_DOC, str(pipeline.resolve()), repr(time.time())],
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("out", type=Path, help="output stem: OUT.json and OUT.md")
    parser.add_argument("--quick", action="store_true", help="100 docs, one repeat (a smoke test)")
    parser.add_argument("--no-install", action="store_true", help="no fresh venvs: cold start in this environment")
    parser.add_argument("--footprint-only", action="store_true", help="only the fresh venvs' sizes (spaCy alone too)")
    args = parser.parse_args(argv)
    if args.footprint_only:
        work = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
        try:
            sizes = footprints(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows = [f"| {name} | {mb:,.1f} |" for name, mb in sizes.items()]
        write_results(args.out, {"footprint_mb": sizes}, "\n".join(["| venv | MB |", "|---|---|", *rows]) + "\n")
        return
    gold = read_gold(args.test, limit=100 if args.quick else 0)
    repeats = 1 if args.quick else 3
    work = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    try:
        result = run(args, gold, repeats, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args.out, result, markdown(result))


def run(args, gold, repeats: int, work: Path) -> Dict:
    export_runtime(args.pipeline, work / "fp32")
    export_runtime(args.pipeline, work / "int8", int8=True)
    systems = {
        "torch": spacy.load(args.pipeline),
        "runtime-fp32": spacy.load(work / "fp32"),
        "runtime-int8": spacy.load(work / "int8"),
    }
    docs = [plain_copy(doc, systems["torch"].vocab) for doc in gold]
    reference = entities(systems["torch"], docs)
    result: Dict = {"machine": machine_info(), "docs": len(gold), "words": sum(len(d) for d in gold), "systems": {}}
    for name, nlp in systems.items():
        found = entities(nlp, [plain_copy(d, nlp.vocab) for d in gold])
        differ = sum(a != b for a, b in zip(found, reference))
        result["systems"][name] = {"ents_f": f1(nlp, gold), "docs_with_other_entities_than_torch": differ}
    for name, per in speeds(systems, gold, repeats).items():
        result["systems"][name]["words_per_s"] = per
    for name, path in (("torch", args.pipeline), ("runtime-fp32", work / "fp32"), ("runtime-int8", work / "int8")):
        result["systems"][name]["wheel_mb"] = wheel_mb(path, work, name.replace("-", "_"))
    if args.no_install:
        here = Path(sys.executable)
        result["cold_start_s"] = {
            "torch": cold_start(here, args.pipeline, repeats),
            "runtime-fp32": cold_start(here, work / "fp32", repeats),
        }
    else:
        wheel_dir = work / "dist"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)], check=True
        )
        (wheel,) = wheel_dir.glob("spacy_wnut-*.whl")
        runtime_python = fresh_env(work / "venv-runtime", [str(wheel)])
        train_python = fresh_env(work / "venv-train", [f"{wheel}[train]"])
        result["footprint_mb"] = {
            "runtime": site_packages_mb(work / "venv-runtime"),
            "train": site_packages_mb(work / "venv-train"),
        }
        result["cold_start_s"] = {
            "torch": cold_start(train_python, args.pipeline, repeats),
            "runtime-fp32": cold_start(runtime_python, work / "fp32", repeats),
        }
    return result


def markdown(result: Dict) -> str:
    m = result["machine"]
    lines = [
        f"# Run-time pipeline vs torch pipeline ({result['docs']} WNUT 17 test docs, {result['words']} words)",
        "",
        f"{m['cpu']}, {m['cores']} cores; torch {m['torch']}, spaCy {m['spacy']}",
        "",
        "| system | test F1 | docs with other entities than torch | words/s batch 1 | words/s batch 64 | wheel MB |",
        "|---|---|---|---|---|---|",
    ]
    base = result["systems"]["torch"]["words_per_s"]
    for name, row in result["systems"].items():
        w = row["words_per_s"]
        lines.append(
            f"| {name} | {row['ents_f']:.4f} | {row['docs_with_other_entities_than_torch']} | "
            f"{w['1']:.0f} ({w['1'] / base['1']:.2f}x) | {w['64']:.0f} ({w['64'] / base['64']:.2f}x) | "
            f"{row['wheel_mb']:.1f} |"
        )
    cold = result["cold_start_s"]
    lines += [
        "",
        f"Cold start (process start to first doc): torch {cold['torch']:.2f} s, run-time fp32 "
        f"{cold['runtime-fp32']:.2f} s ({cold['runtime-fp32'] / cold['torch']:.2f} of torch's).",
    ]
    if "footprint_mb" in result:
        fp = result["footprint_mb"]
        lines.append(
            f"Install footprint (site-packages): run-time {fp['runtime']:.0f} MB, [train] {fp['train']:.0f} MB "
            f"({fp['runtime'] / fp['train']:.1%} of [train]'s)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
