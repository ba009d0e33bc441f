"""Scale-out: words/s of single-process `annotate` and of `annotate --ray` with 1 and 2 actors, same texts.

The texts are WNUT 17 test and dev sentences, cycled to `--texts` records of
JSONL. Each row reports the wall-clock run and, separately, its start-up:
loading the pipeline (single process), or starting Ray plus the slowest
actor's pipeline load (Ray). Run on one machine, this shows what an actor
pool costs and what it buys there; on a cluster, actors spread over machines.

    python bench/scaleout.py --pipeline training/model-tuned --texts 20000
"""

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Dict, List

from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]


def make_input(path: Path, n: int) -> int:
    """`n` JSONL records cycling through WNUT 17 test and dev sentences; returns their words."""
    from spacy_wnut.data.conll import read_conll

    sentences = [
        s.words
        for name in ("emerging.test.annotated", "emerging.dev.conll")
        for s in read_conll(ROOT / "assets" / name)
    ]
    words = 0
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            tokens = sentences[i % len(sentences)]
            words += len(tokens)
            out.write(json.dumps({"text": " ".join(tokens), "id": i}) + "\n")
    return words


def single_process(pipeline: str, source: Path, workdir: Path, batch_size: int) -> Dict:
    from spacy_wnut.tools.annotate import annotate, load_for_annotation

    start = time.perf_counter()
    nlp = load_for_annotation(pipeline)
    loaded = time.perf_counter()
    annotate(nlp, source, workdir / "single.jsonl", batch_size=batch_size, progress=False, overwrite=True)
    return {"startup_seconds": loaded - start, "run_seconds": time.perf_counter() - loaded}


def ray_run(pipeline: str, source: Path, workdir: Path, actors: int, batch_size: int) -> Dict:
    import ray

    from spacy_wnut.tools.distributed import annotate_ray

    # Each row starts its own local cluster, sized for its actors; its start-up is part of the row.
    summary = annotate_ray(
        pipeline, source, workdir / f"ray-{actors}", actors=actors, batch_size=batch_size, overwrite=True
    )
    ray.shutdown()
    assert summary.balanced
    return {
        "ray_start_seconds": summary.startup_seconds,
        "model_load_seconds": summary.model_load_seconds,
        "startup_seconds": summary.startup_seconds + summary.model_load_seconds,
        "run_seconds": summary.run_seconds,
    }


def markdown(rows: Dict[str, Dict], words: int, texts: int) -> str:
    lines = [
        f"Scale-out on {texts:,} texts ({words:,} words), {os.cpu_count()} CPU cores, one machine:",
        "",
        "| back-end | start-up s | run s | words/s (run) | words/s (start-up included) |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['startup_seconds']:.1f} | {row['run_seconds']:.1f} | {row['words_per_second']:,.0f} | "
            f"{row['words_per_second_with_startup']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="trained pipeline directory")
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--actors", default="1,2")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=Path("training/scaleout"))
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    pipeline = str(Path(args.pipeline).resolve())
    source = args.workdir / "texts.jsonl"
    words = make_input(source, args.texts)
    rows = {"annotate (1 process)": single_process(pipeline, source, args.workdir, args.batch_size)}
    for actors in (int(a) for a in args.actors.split(",")):
        rows[f"annotate --ray, {actors} actor(s)"] = ray_run(pipeline, source, args.workdir, actors, args.batch_size)
    for row in rows.values():
        row["words_per_second"] = words / row["run_seconds"]
        row["words_per_second_with_startup"] = words / (row["run_seconds"] + row["startup_seconds"])
    table = markdown(rows, words, args.texts)
    stem = args.results / f"{datetime.date.today().isoformat()}-scaleout"
    payload = {
        "texts": args.texts,
        "words": words,
        "batch_size": args.batch_size,
        "cores": os.cpu_count(),
        "cpu": platform.processor(),
        "pipeline": args.pipeline,
        "rows": rows,
    }
    write_results(stem, payload, table)


if __name__ == "__main__":
    main()
