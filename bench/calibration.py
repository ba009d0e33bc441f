"""Calibration of the entity probabilities: a temperature fitted on dev, ECE / Brier / reliability on test.

    python bench/calibration.py --model training/model-tuned --dev corpus/dev.spacy --test corpus/test.spacy

Predicted entities are those the pipeline writes (its decoder and `entity_bias`); one is correct when a gold
entity has exactly its span and label. The temperature does not change them, only their probabilities.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spacy_wnut.pipeline.component import find_wnut_pipe, load_pipeline  # noqa: E402
from spacy_wnut.tools.scoring import read_examples  # noqa: E402
from spacy_wnut.training.calibration import EntityOutcomes, choose_thresholds, threshold_curve  # noqa: E402


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--target-precision", type=float, default=0.8)
    args = parser.parse_args(argv)
    nlp = load_pipeline(args.model)
    _, pipe = find_wnut_pipe(nlp)
    dev = EntityOutcomes(nlp, read_examples(nlp, args.dev, gold_preproc=True))
    test = EntityOutcomes(nlp, read_examples(nlp, args.test, gold_preproc=True))
    temperature = dev.fit_temperature()
    result = {"model": str(args.model), "entity_bias": pipe.entity_bias, "temperature": temperature}
    for name, outcomes in (("dev", dev), ("test", test)):
        result[name] = {"T=1": outcomes.measures(1.0), "fitted": outcomes.measures(temperature)}
    n_gold = sum(len(eg.reference.ents) for eg in read_examples(nlp, args.test, gold_preproc=True))
    curve = threshold_curve(numpy.exp(test.log_probs(temperature)), test.correct, n_gold)
    result["test"]["threshold_curve"] = curve
    result["test"]["chosen"] = choose_thresholds(curve, args.target_precision)
    for name in ("dev", "test"):
        for which in ("T=1", "fitted"):
            m = result[name][which]
            print(
                f"{name} {which:6}: {m['entities']} entities, accuracy {m['accuracy']:.3f}, mean p "
                f"{m['mean_probability']:.3f}, ECE {m['ece']:.4f}, Brier {m['brier']:.4f}"
            )
    print(f"temperature fitted on dev: {temperature:.3f}")
    chosen = result["test"]["chosen"]
    for what, row in (("best F1", chosen["best_f1"]), (f"P >= {args.target_precision:g}", chosen["target"])):
        if row is not None:
            print(
                f"test, {what}: min_score {row['threshold']:.2f}: P {row['p']:.3f} R {row['r']:.3f} F1 {row['f']:.3f}"
            )
    for row in result["test"]["fitted"]["reliability"]:
        if row["count"]:
            print(
                f"  [{row['low']:.1f}, {row['high']:.1f}): {row['count']:4d}  "
                f"p {row['mean_prob']:.3f}  acc {row['accuracy']:.3f}"
            )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
