"""The seqeval metric for Hugging Face `evaluate`, offline, and a `compute_metrics` for `Trainer`.

`evaluate.load("seqeval")` fetches its script from the hub; this package ships
the same metric (`seqeval_metric/seqeval_metric.py`: same inputs, keyword
arguments and outputs, computed by the same seqeval calls), and
`seqeval_metric_path()` gives `evaluate.load` its absolute file path, so it
never consults the hub. On the same entities its overall and per-type P/R/F1
equal spaCy's scorer (`spacy evaluate`) and `tools.scoring.seqeval_scores`.
"""

import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple, Union

import numpy

from ..errors import InputError, require

METRIC_SCRIPT = Path(__file__).parent / "seqeval_metric" / "seqeval_metric.py"
# The label id `DataCollatorForTokenClassification` and the tutorial put on
# special tokens and on every subword but a word's first: not scored.
IGNORE_INDEX = -100

LabelList = Union[Sequence[str], Mapping[int, str]]


def seqeval_metric_path() -> str:
    """The metric script's absolute path, for `evaluate.load` (a local file: no hub access).

    RETURNS (str): the path of `seqeval_metric.py`.
    """
    if not METRIC_SCRIPT.is_file():  # an install that left out the package data
        raise FileNotFoundError(f"{METRIC_SCRIPT}: the seqeval metric script is missing from this install")
    return str(METRIC_SCRIPT)


def load_seqeval_metric(**kwargs: Any):
    """`evaluate.load(seqeval_metric_path(), **kwargs)`, or a one-line error naming the extra to install.

    RETURNS (evaluate.EvaluationModule): the metric, named "seqeval" as on the hub.
    """
    require("the seqeval metric for Hugging Face evaluate", ("evaluate", "datasets", "seqeval"), "train")
    import evaluate

    return evaluate.load(seqeval_metric_path(), **kwargs)


def check_label_list(label_list: LabelList) -> List[str]:
    """The tags in id order, refusing an `id2label` whose ids are not 0..N-1 and a tag that is not `O` or
    `PREFIX-TYPE` (seqeval would score it as a type of its own, without a word).

    RETURNS (List[str]): tag of each id.
    """
    if isinstance(label_list, Mapping):
        ids = sorted(int(i) for i in label_list)
        if ids != list(range(len(ids))):
            missing = sorted(set(range(max(ids, default=-1) + 1)) - set(ids))
            raise InputError("label_list", f"ids must be 0..{len(ids) - 1} without gaps; missing {missing[:5]}")
        tags = [str(label_list[i] if i in label_list else label_list[str(i)]) for i in ids]
    else:
        tags = [str(tag) for tag in label_list]
    bad = [tag for tag in tags if tag != "O" and not re.match(r"^[BIESLU]-\S", tag)]
    if bad:
        raise InputError("label_list", f"{bad[:3]} are not O or PREFIX-TYPE tags (IOB2, IOBES or BILOU)")
    return tags


def strip_ignored(
    predictions: numpy.ndarray, label_ids: numpy.ndarray, label_list: LabelList
) -> Tuple[List[List[str]], List[List[str]]]:
    """Predicted and gold tags of each row, without the positions labelled -100 (as the tutorial does).

    predictions (numpy.ndarray): logits (rows, positions, tags) or tag ids (rows, positions).
    label_ids (numpy.ndarray): gold tag ids (rows, positions), -100 where not scored.
    label_list (Sequence[str] or Mapping[int, str]): tag of each id (a list, or `config.id2label`).
    RETURNS (Tuple[List[List[str]], List[List[str]]]): predicted tags, gold tags.
    """
    predictions, label_ids = numpy.asarray(predictions), numpy.asarray(label_ids)
    if predictions.dtype.kind == "f" and not numpy.isfinite(predictions).all():
        raise InputError("predictions", "hold NaN or infinite logits: the model diverged (check the loss)")
    if predictions.ndim == 3:
        predictions = predictions.argmax(axis=-1)
    if predictions.shape != label_ids.shape:
        raise InputError(
            "predictions", f"shape {predictions.shape} does not match the labels' {label_ids.shape} (rows, positions)"
        )
    tags = check_label_list(label_list)
    kept = label_ids != IGNORE_INDEX
    for name, ids in (("label_ids", label_ids[kept]), ("predictions", predictions[kept])):
        bad = ids[(ids < 0) | (ids >= len(tags))]
        if bad.size:
            raise InputError(name, f"tag id {int(bad[0])} is not in the label list of {len(tags)} tags")
    pred_tags = [[tags[p] for p in row[keep]] for row, keep in zip(predictions, kept)]
    gold_tags = [[tags[g] for g in row[keep]] for row, keep in zip(label_ids, kept)]
    return pred_tags, gold_tags


def compute_metrics(
    label_list: LabelList, *, per_type: bool = False, **metric_kwargs: Any
) -> Callable[[Any], Dict[str, float]]:
    """A `compute_metrics` for `Trainer`: the tutorial's, scored by the packaged seqeval metric.

    label_list (Sequence[str] or Mapping[int, str]): tag of each id (a list, or `config.id2label`).
    per_type (bool): also return each type's scores as `{type}_{precision,recall,f1,number}` beside the
        `overall_*` ones, as transformers' `run_ner.py` does with `--return_entity_level_metrics`.
    metric_kwargs: passed to `compute` (`suffix`, `scheme`, `mode`, `sample_weight`, `zero_division`).
    RETURNS (Callable[[EvalPrediction], Dict[str, float]]): without `per_type`, `precision`, `recall`,
        `f1` and `accuracy` (the overall scores), as the tutorial returns them.
    """
    check_label_list(label_list)
    metric = load_seqeval_metric()

    def compute(prediction) -> Dict[str, float]:
        predictions, label_ids = prediction[0], prediction[1]
        if isinstance(predictions, tuple):  # models that also return hidden states or attentions
            predictions = predictions[0]
        pred_tags, gold_tags = strip_ignored(predictions, label_ids, label_list)
        # A row with no scored position holds nothing to score (and an empty batch would divide by zero).
        rows = [i for i, gold in enumerate(gold_tags) if gold]
        if not rows:
            warnings.warn(
                "[spacy_wnut] compute_metrics: no scored position (every label is -100): all scores 0", stacklevel=2
            )
            names = ("precision", "recall", "f1", "accuracy")
            return dict.fromkeys((f"overall_{n}" for n in names) if per_type else names, 0.0)
        pred_tags, gold_tags = [pred_tags[i] for i in rows], [gold_tags[i] for i in rows]
        results = metric.compute(predictions=pred_tags, references=gold_tags, **metric_kwargs)
        if per_type:
            scores = flatten(results)
        else:
            scores = {name: results[f"overall_{name}"] for name in ("precision", "recall", "f1", "accuracy")}
        return {key: value.item() if isinstance(value, numpy.generic) else value for key, value in scores.items()}

    return compute


def flatten(results: Dict[str, Any]) -> Dict[str, float]:
    """The metric's output with each type's dict flattened to `{type}_{key}` (scalars for `Trainer`'s logs)."""
    flat: Dict[str, float] = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{name}": score for name, score in value.items()})
        else:
            flat[key] = value
    return flat
