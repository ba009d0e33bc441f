"""Calibration of the entity probabilities: ECE / Brier / reliability on test, before and after the temperature.

    python bench/calibration.py --model minilm-s0=training/model-tuned [--model NAME=DIR ...] \
        --dev corpus/dev.spacy --test corpus/test.spacy --output bench/results/DATE-calibration

Each model is a pipeline as the tune step saved it (`entity_bias` and `temperature` picked on dev); a
pipeline still at temperature 1 has one fitted on dev here. Predicted entities are those the pipeline
writes (its decoder and `entity_bias`); one is correct when a gold entity has exactly its span and label.
The temperature does not change them, only their probabilities. Writes OUTPUT.json (everything, the
threshold curves too) and OUTPUT.md (the tables), and prints the same.
"""

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spacy_wnut.data.corpus import read_examples  # noqa: E402
from spacy_wnut.pipeline.component import find_wnut_pipe, load_pipeline  # noqa: E402
from spacy_wnut.training.calibration import EntityOutcomes, choose_thresholds, threshold_curve  # noqa: E402

from results_files import write_results  # noqa: E402


def measure(name: str, path: Path, dev_path: Path, test_path: Path, target_precision: float) -> Dict[str, Any]:
    """One pipeline's calibration on dev and test, at temperature 1 and at its own (or a fitted) one."""
    nlp = load_pipeline(path)
    _, pipe = find_wnut_pipe(nlp)
    dev = EntityOutcomes(nlp, read_examples(nlp, dev_path, gold_preproc=True))
    test_examples = read_examples(nlp, test_path, gold_preproc=True)
    test = EntityOutcomes(nlp, test_examples)
    saved = pipe.temperature != 1.0
    temperature = pipe.temperature if saved else dev.fit_temperature()
    result: Dict[str, Any] = {
        "name": name,
        "model": str(path),
        "entity_bias": pipe.entity_bias,
        "temperature": temperature,
        "temperature_from": "the pipeline (tune step)" if saved else "fitted on dev here",
    }
    for split, outcomes in (("dev", dev), ("test", test)):
        result[split] = {"T=1": outcomes.measures(1.0), "fitted": outcomes.measures(temperature)}
    n_gold = sum(len(eg.reference.ents) for eg in test_examples)
    curve = threshold_curve(numpy.exp(test.log_probs(temperature)), test.correct, n_gold)
    result["test"]["threshold_curve"] = curve
    result["test"]["chosen"] = choose_thresholds(curve, target_precision)
    return result


def markdown(results: List[Dict[str, Any]], target_precision: float) -> str:
    """The summary table (one row per model), then each model's test reliability table."""
    lines = [
        "| model | T | test entities | accuracy | mean p (T=1) | ECE T=1 | ECE at T | Brier T=1 | Brier at T | "
        f"min_score for P ≥ {target_precision:g} (P / R) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        before, after, target = r["test"]["T=1"], r["test"]["fitted"], r["test"]["chosen"]["target"]
        reach = (
            "not reached" if target is None else f"{target['threshold']:.2f} ({target['p']:.3f} / {target['r']:.3f})"
        )
        lines.append(
            f"| {r['name']} | {r['temperature']:.2f} | {before['entities']} | {before['accuracy']:.3f} | "
            f"{before['mean_probability']:.3f} | {before['ece']:.3f} | **{after['ece']:.3f}** | "
            f"{before['brier']:.3f} | {after['brier']:.3f} | {reach} |"
        )
    for r in results:
        lines += [
            "",
            f"{r['name']}, test, at T = {r['temperature']:.2f}:",
            "",
            "| bin | entities | mean p | accuracy |",
        ]
        lines.append("|---|---|---|---|")
        for row in r["test"]["fitted"]["reliability"]:
            if row["count"]:
                lines.append(
                    f"| [{row['low']:.1f}, {row['high']:.1f}) | {row['count']} | {row['mean_prob']:.3f} | "
                    f"{row['accuracy']:.3f} |"
                )
    return "\n".join(lines) + "\n"


def named_model(value: str) -> Tuple[str, Path]:
    """NAME=DIR, or DIR (named after itself)."""
    name, _, path = value.rpartition("=")
    return (name or path, Path(path))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=named_model, action="append", required=True, help="NAME=DIR or DIR")
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="OUTPUT.json and OUTPUT.md (no suffix)")
    parser.add_argument("--target-precision", type=float, default=0.8)
    args = parser.parse_args(argv)
    results = []
    for name, path in args.model:
        result = measure(name, path, args.dev, args.test, args.target_precision)
        results.append(result)
        for split in ("dev", "test"):
            for which in ("T=1", "fitted"):
                m = result[split][which]
                print(
                    f"{name} {split} {which:6}: {m['entities']} entities, accuracy {m['accuracy']:.3f}, mean p "
                    f"{m['mean_probability']:.3f}, ECE {m['ece']:.4f}, Brier {m['brier']:.4f}",
                    flush=True,
                )
    table = markdown(results, args.target_precision)
    if args.output:
        write_results(args.output, results, table)
    else:
        print(table)


if __name__ == "__main__":
    main()
