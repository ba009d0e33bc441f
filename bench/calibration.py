"""Calibration of the entity probabilities: a temperature fitted on dev, ECE / Brier / reliability on test.

    python bench/calibration.py --model training/model-tuned --dev corpus/dev.spacy --test corpus/test.spacy

Predicted entities are those the pipeline writes (its decoder and `entity_bias`); one is correct when a gold
entity has exactly its span and label. The temperature does not change them, only their probabilities.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy
from spacy.util import minibatch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spacy_wnut.ml.encoding import doc_lengths  # noqa: E402
from spacy_wnut.pipeline.component import find_wnut_pipe, load_pipeline  # noqa: E402
from spacy_wnut.pipeline.decode import decode_entities  # noqa: E402
from spacy_wnut.pipeline.marginals import entity_log_probs  # noqa: E402
from spacy_wnut.tools.scoring import read_examples  # noqa: E402
from spacy_wnut.training.calibration import (  # noqa: E402
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_table,
)


def predictions(nlp, path: Path, batch_size: int = 64):
    """Per batch: the token log-probabilities the decoder uses, the entities, and whether each is gold."""
    _, pipe = find_wnut_pipe(nlp)
    examples = read_examples(nlp, path, gold_preproc=True)
    batches = []
    for chunk in minibatch(examples, batch_size):
        docs = [eg.predicted for eg in chunk]
        if not doc_lengths(docs).sum():
            continue
        probs = pipe.token_probs(pipe.subword_scores(docs))
        spans = decode_entities(probs, pipe.scheme, pipe.decoder, pipe.entity_bias)
        log_probs = numpy.log(numpy.maximum(probs.probs, 1e-12))
        log_probs[:, 1:] += pipe.entity_bias
        log_probs[~probs.has_rows] = pipe.scheme.no_rows_prior()
        offsets = numpy.concatenate([[0], numpy.cumsum(probs.doc_lengths)[:-1]])
        gold = set()
        for i, eg in enumerate(chunk):
            for ent in eg.reference.ents:
                gold.add((offsets[i] + ent.start, offsets[i] + ent.end, pipe.labels.index(ent.label_)))
        correct = numpy.array(
            [(int(s), int(e), int(lab)) in gold for s, e, lab in zip(spans.starts, spans.ends, spans.label_ids)]
        )
        batches.append((log_probs, probs.doc_lengths, spans, correct))
    return pipe, batches


def log_probs_at(pipe, batches, temperature: float) -> numpy.ndarray:
    allowed = pipe.scheme.allowed_transitions()
    return numpy.concatenate(
        [
            entity_log_probs(lp, lengths, allowed, s.starts, s.ends, s.label_ids, temperature)
            for lp, lengths, s, _ in batches
        ]
    )


def measures(probs: numpy.ndarray, correct: numpy.ndarray) -> Dict:
    return {
        "entities": int(len(probs)),
        "accuracy": float(correct.mean()) if len(correct) else None,
        "mean_probability": float(probs.mean()) if len(probs) else None,
        "ece": expected_calibration_error(probs, correct),
        "brier": brier_score(probs, correct),
        "reliability": reliability_table(probs, correct),
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    nlp = load_pipeline(args.model)
    pipe, dev = predictions(nlp, args.dev)
    _, test = predictions(nlp, args.test)
    dev_correct = numpy.concatenate([b[3] for b in dev])
    test_correct = numpy.concatenate([b[3] for b in test])
    temperature = fit_temperature(lambda t: log_probs_at(pipe, dev, t), dev_correct)
    result = {"model": str(args.model), "entity_bias": pipe.entity_bias, "temperature": temperature}
    for name, batches, correct in (("dev", dev, dev_correct), ("test", test, test_correct)):
        result[name] = {
            "T=1": measures(numpy.exp(log_probs_at(pipe, batches, 1.0)), correct),
            "fitted": measures(numpy.exp(log_probs_at(pipe, batches, temperature)), correct),
        }
    for name in ("dev", "test"):
        for which in ("T=1", "fitted"):
            m = result[name][which]
            print(
                f"{name} {which:6}: {m['entities']} entities, accuracy {m['accuracy']:.3f}, mean p "
                f"{m['mean_probability']:.3f}, ECE {m['ece']:.4f}, Brier {m['brier']:.4f}"
            )
    print(f"temperature fitted on dev: {temperature:.3f}")
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
