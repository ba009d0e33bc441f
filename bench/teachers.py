"""Teacher study (issue 32): a backbone's seeds trained as the project trains them (model-tuned: selected
and tuned on dev; model-final: retrained on train + dev for the selected steps), optionally K
cross-fitted teachers whose out-of-fold soft targets label every training text with a teacher that
never saw it, and the best seed's soft targets; many trainings at once on one GPU.

    python bench/teachers.py --backbone DIR --corpus corpus --seeds 0,1,2 [--folds 3] \\
        [--gpu-id 0 --jobs 6] [--set training.max_steps=10 ...] --work WORK --output bench/results/DATE-teachers

Each seed is a track of the project's own commands, run in its own processes: `spacy train`
(WORK/seedS), `spacy wnut tune-bias` (model-tuned), `spacy wnut train-final` (model-final; not with
--no-final), then scored (seqeval; spaCy's scorer checked to agree). Fold k (of K, docs i with i % K == k held out) is
`spacy train` on the other folds (seed --fold-seed, selected on dev), tuned on dev, and labels its
held-out fold (`spacy wnut distill --targets-only`); WORK/out-of-fold/soft-targets holds the K
held-out files (hard links) and a manifest naming each fold's. Tracks run --jobs at a time (a GPU
has room for several: one run's small batches leave it idle most of the time), each with the CPU's
cores shared out among them, or OMP_NUM_THREADS threads where it is set. Steps whose output
exists in WORK are skipped on a rerun (a training only once it finished). Writes OUTPUT.json and
OUTPUT.md, and prints the tables.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from distill import agreement, pairs, pipeline_settings, run_logged, tuned  # noqa: E402
from seeds import clear_for_training, mark_trained, trained  # noqa: E402

from measure import machine_info  # noqa: E402
from results_files import write_results  # noqa: E402

SPACY = [sys.executable, "-m", "spacy"]
OOF = "out-of-fold"


class Study:
    """What every track shares: the config, corpus, backbone, GPU, overrides and the work folder."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.config: Path = args.config
        self.corpus: Path = args.corpus
        self.backbone: str = args.backbone
        self.gpu = ["--gpu-id", str(args.gpu_id)]
        self.sets = [f"--{key}={value}" for key, value in pairs(args.set).items()]
        self.work: Path = args.work
        self.final_models = not args.no_final
        # The cores are shared among --jobs tracks, unless the caller says how many threads each gets.
        threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // max(args.jobs, 1)))
        self.env = {**os.environ, "OMP_NUM_THREADS": threads}
        self.check_settings(args)

    def check_settings(self, args: argparse.Namespace) -> None:
        """WORK/settings.json: what the outputs in WORK were made with; a rerun with other settings is refused
        (its steps would be skipped on outputs made otherwise)."""
        settings = {"config": str(args.config.resolve()), "corpus": str(args.corpus.resolve())}
        settings.update({"backbone": args.backbone, "sets": pairs(args.set), "folds": args.folds})
        settings["fold_seed"] = args.fold_seed
        for split in ("train", "dev"):
            settings[f"{split}_sha256"] = hashlib.sha256((args.corpus / f"{split}.spacy").read_bytes()).hexdigest()
        path = self.work / "settings.json"
        if path.is_file():
            kept = json.loads(path.read_text())
            changed = sorted(key for key in settings if kept.get(key) != settings[key])
            if changed:
                raise SystemExit(f"{self.work} was made with other settings ({', '.join(changed)}): use another --work")
        self.work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2))

    def run(self, command: List[str], log: Path) -> float:
        """Run one step in its own process (output to `log`); returns its wall-clock seconds."""
        return run_logged(command, log, self.env)

    def train(self, output: Path, train: Path, seed: int, labels: Sequence[str] = ()) -> Optional[float]:
        """`spacy train` selected on dev (OUTPUT/model-best), once it has finished; `labels`: the component's
        labels, else those of `train`."""
        if trained(output):
            return None
        clear_for_training(output)
        output.mkdir(parents=True, exist_ok=True)
        command = [*SPACY, "train", str(self.config), "--output", str(output), *self.gpu]
        command += [f"--paths.train={train}", f"--paths.dev={self.corpus / 'dev.spacy'}"]
        command += [f"--paths.transformer={self.backbone}", f"--system.seed={seed}", *self.sets]
        if labels:
            command.append("--initialize.components=" + json.dumps({"wnut_ner": {"labels": list(labels)}}))
        return mark_trained(output, self.run(command, output / "train.log"))

    def tune(self, output: Path) -> Path:
        """`spacy wnut tune-bias` of OUTPUT/model-best on dev (OUTPUT/model-tuned), once."""
        return tuned(output, self.corpus / "dev.spacy", self.gpu, self.env)

    def final(self, output: Path, seed: int) -> Optional[float]:
        """`spacy wnut train-final` on train + dev for the selected steps (OUTPUT/model-final), once; not
        with --no-final."""
        if not self.final_models or (output / "model-final").is_dir():
            return None
        train, dev = self.corpus / "train.spacy", self.corpus / "dev.spacy"
        command = [*SPACY, "wnut", "train-final", str(self.config), str(output / "model-tuned")]
        command += [str(output / "model-final"), "--train", str(train), "--train", str(dev), "--dev", str(dev)]
        command += [f"--paths.train={train}", f"--paths.transformer={self.backbone}", f"--system.seed={seed}"]
        return self.run([*command, *self.gpu, *self.sets], output / "final.log")

    def targets(self, teacher: Path, output: Path, train: Path, log: Path) -> Dict[str, Any]:
        """The teacher's soft targets of `train` and dev (`spacy wnut distill --targets-only`, which reuses
        them when they match the teacher and input, and refuses them otherwise)."""
        command = [*SPACY, "wnut", "distill", str(teacher), str(self.config), str(output), "--targets-only"]
        self.run([*command, "--train", str(train), "--dev", str(self.corpus / "dev.spacy"), *self.gpu], log)
        return json.loads((output / "soft-targets" / "soft-targets.json").read_text())

    def scores(self, pipeline: Path, split: str) -> Dict[str, float]:
        """seqeval P/R/F1 of a pipeline on corpus/SPLIT.spacy, in its own process (on the GPU, if given)."""
        command = [sys.executable, str(Path(__file__)), "--score", str(pipeline), str(self.corpus / f"{split}.spacy")]
        done = subprocess.run([*command, *self.gpu], capture_output=True, text=True, env=self.env)
        if done.returncode:
            raise SystemExit(f"scoring {pipeline} on {split} failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def cached(output: Path, compute) -> Dict[str, Any]:
    """OUTPUT/bench-teachers.json if it was written for the pipelines there now (their meta.json's mtimes),
    else `compute()` written there: a rerun scores nothing again, a retrained pipeline is scored again."""
    path = output / "bench-teachers.json"
    stamp = [p.stat().st_mtime_ns for p in sorted(output.glob("model-*/meta.json"))]
    if path.is_file():
        kept = json.loads(path.read_text())
        if kept.get("stamp") == stamp:
            return kept["result"]
    result = compute()
    path.write_text(json.dumps({"stamp": stamp, "result": result}, indent=2))
    return result


def seed_track(study: Study, seed: int) -> Dict[str, Any]:
    """One seed: trained, tuned, retrained on train + dev, and scored (model-tuned dev/test, model-final test)."""
    output = study.work / f"seed{seed}"
    seconds = study.train(output, study.corpus / "train.spacy", seed)
    model = study.tune(output)
    final_seconds = study.final(output, seed)

    def compute() -> Dict[str, Any]:
        return {
            "output": str(output),
            "train_seconds": seconds,
            "final_seconds": final_seconds,
            **pipeline_settings(model),
            "dev": study.scores(model, "dev"),
            "test": study.scores(model, "test"),
            "final_test": study.scores(output / "model-final", "test") if study.final_models else None,
        }

    result = cached(output, compute)
    print(json.dumps({"seed": seed, **result}), flush=True)
    return result


def corpus_labels(path: Path) -> List[str]:
    """The entity labels of a DocBin's gold, sorted (every fold teacher gets them all, as the component
    sorts the labels it reads)."""
    import spacy
    from spacy.tokens import DocBin

    docs = DocBin().from_disk(path).get_docs(spacy.blank("en").vocab)
    return sorted({ent.label_ for doc in docs for ent in doc.ents})


def split_folds(train: Path, folds: int, work: Path) -> List[Dict[str, Path]]:
    """WORK/folds/{train,heldout}-K.spacy: doc i is held out of fold i % FOLDS, kept in the others."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_wnut.data.convert import CORPUS_ATTRS

    paths = [{"train": work / f"train-{k}.spacy", "heldout": work / f"heldout-{k}.spacy"} for k in range(folds)]
    if all(p["train"].is_file() and p["heldout"].is_file() for p in paths):
        return paths
    work.mkdir(parents=True, exist_ok=True)
    docs = list(DocBin().from_disk(train).get_docs(spacy.blank("en").vocab))
    for k, fold in enumerate(paths):
        held_out = [i % folds == k for i in range(len(docs))]
        DocBin(attrs=CORPUS_ATTRS, docs=[d for d, out in zip(docs, held_out) if not out]).to_disk(fold["train"])
        DocBin(attrs=CORPUS_ATTRS, docs=[d for d, out in zip(docs, held_out) if out]).to_disk(fold["heldout"])
    return paths


def fold_track(study: Study, k: int, fold: Dict[str, Path], seed: int) -> Dict[str, Any]:
    """Fold k: trained on the other folds, tuned on dev, its held-out fold labelled (soft targets)."""
    output = study.work / f"fold{k}"
    seconds = study.train(output, fold["train"], seed, corpus_labels(study.corpus / "train.spacy"))
    model = study.tune(output)
    manifest = study.targets(model, output / "targets", fold["heldout"], output / "targets.log")

    def compute() -> Dict[str, Any]:
        return {
            "output": str(output),
            "train_seconds": seconds,
            **pipeline_settings(model),
            "dev": study.scores(model, "dev"),
        }

    result = {**cached(output, compute), "manifest": manifest}
    print(json.dumps({"fold": k, **{key: v for key, v in result.items() if key != "manifest"}}), flush=True)
    return result


def out_of_fold(folds: Dict[int, Dict[str, Any]], work: Path) -> Dict[str, Any]:
    """WORK/out-of-fold/soft-targets: each fold's held-out targets (hard links) under train/, its manifest
    naming each fold's teacher and input; the targets' agreement with gold."""
    directory = work / OOF / "soft-targets"
    shutil.rmtree(directory / "train", ignore_errors=True)
    (directory / "train").mkdir(parents=True)
    for k, fold in sorted(folds.items()):
        source = Path(fold["output"]) / "targets" / "soft-targets"
        [given] = [i for i in fold["manifest"]["inputs"] if i["role"] == "train"]
        os.link(source / given["output"], directory / "train" / f"{k:02d}-{Path(given['path']).stem}.spacy")
    tags = {tuple(fold["manifest"]["tags"]) for fold in folds.values()}
    if len(tags) != 1:
        raise SystemExit(f"the fold teachers disagree on their tags: {sorted(tags)}")
    manifest = {"version": 1, "out_of_fold": [fold["manifest"] for _, fold in sorted(folds.items())]}
    manifest["tags"] = list(tags.pop())
    (directory / "soft-targets.json").write_text(json.dumps(manifest, indent=2))
    return {"directory": str(directory), "agreement": agreement(directory)}


def summary(seeds: Dict[int, Dict[str, Any]]) -> Dict[str, Any]:
    """Means and sample sds over seeds of model-tuned dev/test F1, and of model-final test F1 where the
    seeds have one (not with --no-final)."""

    def stats(values: List[float]) -> Dict[str, float]:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return {"mean": statistics.mean(values), "sd": sd, "n": len(values)}

    result = {"tuned_dev_f": stats([r["dev"]["f"] for r in seeds.values()])}
    result["tuned_test_f"] = stats([r["test"]["f"] for r in seeds.values()])
    matched = [(r["final_test"]["f"], r["test"]["f"]) for r in seeds.values() if r["final_test"]]
    if matched:
        result["final_test_f"] = stats([final for final, _ in matched])
        result["final_minus_tuned"] = stats([final - tuned for final, tuned in matched])
    return result


def markdown(result: Dict[str, Any]) -> str:
    """The tables of OUTPUT.md."""
    lines = [f"Teacher study, backbone `{result['backbone']}` ({result['machine'].get('cpu', '')})", ""]
    lines += ["| seed | best step | entity_bias | T | dev F1 | test P | test R | test F1 | model-final test F1 |"]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for seed, r in sorted(result["seeds"].items()):
        row = [seed, r["best_step"], f"{r['entity_bias']:g}", f"{r['temperature']:.2f}", f"{r['dev']['f']:.4f}"]
        row += [f"{r['test'][k]:.4f}" for k in ("p", "r", "f")]
        row.append(f"{r['final_test']['f']:.4f}" if r["final_test"] else "–")
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    if result["seeds"]:
        s = result["summary"]
        lines += [""] + [
            f"- {name}: {s[key]['mean']:.4f} (sd {s[key]['sd']:.4f}, n {s[key]['n']})"
            for name, key in (
                ("model-tuned dev F1", "tuned_dev_f"),
                ("model-tuned test F1", "tuned_test_f"),
                ("model-final test F1", "final_test_f"),
                ("model-final − model-tuned, test F1", "final_minus_tuned"),
            )
            if key in s
        ]
        lines.append(f"- best seed on dev: {result['best_seed']}")
    if result["folds"]:
        lines += ["", f"Cross-fitted teachers ({len(result['folds'])} folds, seed {result['fold_seed']}):", ""]
        lines += ["| fold | best step | entity_bias | dev F1 | held-out docs |", "|---|---|---|---|---|"]
        for k, r in sorted(result["folds"].items()):
            [given] = [i for i in r["manifest"]["inputs"] if i["role"] == "train"]
            row = [k, r["best_step"], f"{r['entity_bias']:g}", f"{r['dev']['f']:.4f}", given["docs"]]
            lines.append("| " + " | ".join(str(v) for v in row) + " |")
    targets = {"out-of-fold": result.get("out_of_fold"), f"seed {result.get('best_seed')}": result.get("targets")}
    rows = [(n, f, a) for n, t in targets.items() if t for f, a in t["agreement"].items()]
    if rows:
        lines += ["", "Soft targets against gold (the teacher's most likely tag):", ""]
        lines += ["| targets | file | argmax = gold | on gold entity tokens | mean top probability |"]
        lines += ["|---|---|---|---|---|"]
        for name, file, a in rows:
            values = [a["argmax_is_gold"], a["argmax_is_gold_on_entity_tokens"], a["mean_top_probability"]]
            lines.append(f"| {name} | {file} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def score_main(pipeline: str, data: str, gpu_id: int) -> None:
    """`--score`: print one JSON line of seqeval P/R/F1 (after checking spaCy's scorer agrees)."""
    from distill import scores

    if gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(gpu_id)
    print(json.dumps(scores(Path(pipeline), Path(data))))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", help="the teachers' transformer (hub name or directory)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "distilbert.cfg")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; empty for none")
    parser.add_argument("--folds", type=int, default=0, help="cross-fitted teachers (0: none)")
    parser.add_argument("--fold-seed", type=int, default=0)
    parser.add_argument("--no-targets", action="store_true", help="skip the best seed's soft targets")
    parser.add_argument("--no-final", action="store_true", help="skip train-final (model-final) on the seeds")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--jobs", type=int, default=1, help="tracks at a time")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--work", type=Path, default=Path("training/teachers-bench"))
    parser.add_argument("--output", type=Path, help="results stem: OUTPUT.json and OUTPUT.md")
    parser.add_argument("--score", nargs=2, metavar=("PIPELINE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score:
        return score_main(*args.score, args.gpu_id)
    if not args.backbone or not args.output:
        parser.error("--backbone and --output are required")
    if args.folds == 1 or args.folds < 0:
        parser.error(f"--folds {args.folds}: 0 (none) or at least 2")
    study = Study(args)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    folds = split_folds(args.corpus / "train.spacy", args.folds, args.work / "folds") if args.folds else []
    result: Dict[str, Any] = {"backbone": args.backbone, "machine": machine_info(), "gpu_id": args.gpu_id}
    result["jobs"], result["sets"], result["fold_seed"] = args.jobs, pairs(args.set), args.fold_seed
    pool = ThreadPoolExecutor(max_workers=max(args.jobs, 1))
    seed_runs = {s: pool.submit(seed_track, study, s) for s in seeds}
    fold_runs = {k: pool.submit(fold_track, study, k, fold, args.fold_seed) for k, fold in enumerate(folds)}
    try:
        for done in as_completed([*seed_runs.values(), *fold_runs.values()]):
            done.result()  # the first failure stops the study (tracks not started yet are cancelled)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    result["seeds"] = {s: run.result() for s, run in seed_runs.items()}
    result["folds"] = {k: run.result() for k, run in fold_runs.items()}
    if seeds:
        result["summary"] = summary(result["seeds"])
        result["best_seed"] = max(seeds, key=lambda s: result["seeds"][s]["dev"]["f"])
        if not args.no_targets:
            best = args.work / f"seed{result['best_seed']}"
            manifest = study.targets(
                best / "model-tuned", best / "targets", args.corpus / "train.spacy", best / "targets.log"
            )
            result["targets"] = {"directory": str(best / "targets" / "soft-targets"), "manifest": manifest}
            result["targets"]["agreement"] = agreement(best / "targets" / "soft-targets")
    if result["folds"]:
        result["out_of_fold"] = out_of_fold(result["folds"], args.work)
    write_results(args.output, result, markdown(result))


if __name__ == "__main__":
    main()
