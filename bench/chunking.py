"""Engines on length-sorted chunks of `batch_subwords` padded subwords against one call per batch, side by side.

    python bench/chunking.py PIPELINE TEST.spacy OUT_STEM [--engines torch,onnx] [--budgets 0,128,256,512]
        [--threads 1] [--limit 640] [--repeats 3] [--quick]

For each engine and `batch_subwords` setting (0: null, one call per batch) it loads the pipeline and
measures median words/s (the settings interleaved in every repeat) in two cases:
- `pipe`: `nlp.pipe(texts, batch_size=64)` over the whole set, whose buffers `wnut_ner` sorts by
  length (annotate's case);
- `requests`: each run of 64 texts in input order given to `nlp.pipe` alone (the server's case: a
  batch of whatever requests arrived together, padded to its longest);
- `single`: each text alone (`nlp(text)`, a server with batching off), once per engine, beside
  which `requests / single` is the most that batching can give the pipeline with no HTTP at all;
and checks that every setting predicts the entities of the null one. Writes OUT_STEM.json and .md.
"""

import argparse
import statistics
import time
from pathlib import Path
from typing import Dict, List

import spacy
import torch

from measure import machine_info, read_gold
from results_files import write_results

BATCH = 64
CASES = ("single", "pipe", "requests")


def entities(nlp, texts: List[str]) -> List[List[tuple]]:
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=BATCH)]


def run_case(nlp, texts: List[str], case: str) -> None:
    if case == "single":
        for text in texts:
            nlp(text)
    elif case == "pipe":
        for _ in nlp.pipe(texts, batch_size=BATCH):
            pass
    else:
        for start in range(0, len(texts), BATCH):
            for _ in nlp.pipe(texts[start : start + BATCH], batch_size=BATCH):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("test")
    parser.add_argument("out_stem")
    parser.add_argument("--engines", default="torch,onnx")
    parser.add_argument("--budgets", default="0,128,256,512")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few texts, one repeat: the harness only")
    args = parser.parse_args()
    limit, repeats = (32, 1) if args.quick else (args.limit, args.repeats)
    torch.set_num_threads(args.threads)
    budgets = [int(b) for b in args.budgets.split(",")]
    if 0 not in budgets:  # the reference every ratio is taken against
        budgets.insert(0, 0)
    systems: Dict[str, spacy.Language] = {}
    for engine in args.engines.split(","):
        for budget in budgets:
            settings = {"engine": engine, "n_threads": args.threads, "batch_subwords": budget or None}
            systems[f"{engine}/{budget or 'null'}"] = spacy.load(
                args.pipeline, config={"components": {"wnut_ner": settings}}
            )
    gold = read_gold(Path(args.test), limit)
    texts = [doc.text for doc in gold]
    n_words = sum(len(doc) for doc in gold)
    found = {name: entities(nlp, texts) for name, nlp in systems.items()}  # also the warm-up
    same = {name: found[name] == found[f"{name.split('/')[0]}/null"] for name in systems}
    # Each text alone is timed once per engine, on its one-call-per-batch pipeline.
    times: Dict[str, Dict[str, List[float]]] = {
        name: {case: [] for case in CASES if case != "single" or name.endswith("/null")} for name in systems
    }
    for _ in range(repeats):
        for case in CASES:
            for name, nlp in systems.items():
                if case in times[name]:
                    start = time.perf_counter()
                    run_case(nlp, texts, case)
                    times[name][case].append(time.perf_counter() - start)
    rows = []
    for name in systems:
        engine, budget = name.split("/")
        speed = {case: n_words / statistics.median(t) for case, t in times[name].items()}
        base = {case: n_words / statistics.median(t) for case, t in times[f"{engine}/null"].items()}
        rows.append(
            {
                "engine": engine,
                "batch_subwords": budget,
                "words_per_s": speed,
                "ratio_to_null": {case: speed[case] / base[case] for case in ("pipe", "requests")},
                "requests_over_single": speed["requests"] / base["single"],
                "same_entities_as_null": same[name],
            }
        )
    result = {"machine": machine_info(), "texts": len(texts), "words": n_words, "repeats": repeats, "rows": rows}
    lines = [
        f"{result['machine']['cpu']}, {args.threads} thread(s); {len(texts)} WNUT 17 test texts, {n_words} words, "
        f"batches of {BATCH}, median of {repeats}.",
        "",
        "| engine | batch_subwords | pipe words/s | x null | requests words/s | x null | requests / single | "
        "same entities |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        w, r = row["words_per_s"], row["ratio_to_null"]
        lines.append(
            f"| {row['engine']} | {row['batch_subwords']} | {w['pipe']:,.0f} | {r['pipe']:.2f} | "
            f"{w['requests']:,.0f} | {r['requests']:.2f} | {row['requests_over_single']:.2f} | "
            f"{row['same_entities_as_null']} |"
        )
    for engine in dict.fromkeys(row["engine"] for row in rows):
        single = n_words / statistics.median(times[f"{engine}/null"]["single"])
        lines.append(f"\n{engine}, each text alone: {single:,.0f} words/s.")
    write_results(Path(args.out_stem), result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
