"""seqeval as a Hugging Face `evaluate` metric, loaded from this file: no hub access.

The same inputs, keyword arguments and outputs as the hub's `seqeval` metric
(`evaluate.load("seqeval")`), computed by the same seqeval calls, so a
`Trainer` recipe gets the same numbers offline. Load it by path:

    import evaluate
    from spacy_wnut.training.hf_metric import seqeval_metric_path

    seqeval = evaluate.load(seqeval_metric_path())
    seqeval.compute(predictions=[["B-person", "I-person", "O"]], references=[["B-person", "I-person", "O"]])

`evaluate` copies this script into its module cache and imports it there, so
it imports nothing from spacy_wnut.
"""

import importlib
from typing import Any, Dict, List, Optional, Sequence, Union

import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report

_DESCRIPTION = """\
Entity-level precision, recall and F1 (micro over all entities, and per entity type) and tag accuracy of
sequence labelling, computed by seqeval (https://github.com/chakki-works/seqeval), which reproduces the
CoNLL `conlleval` script. The hub's `seqeval` metric, packaged with spacy-wnut so that it loads offline.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (List[List[str]]): predicted tags, one list per sequence (e.g. ["B-person", "I-person", "O"]).
    references (List[List[str]]): gold tags, each list as long as its prediction.
    suffix (bool): the tag's prefix comes after the type ("person-B"). Default False.
    scheme (Optional[str]): one of "IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU"; with mode="strict",
        only entities valid in that scheme count. Default None (conlleval's lenient chunking).
    mode (Optional[str]): "strict" for exact matches under `scheme`. Default None.
    sample_weight (Optional[List[float]]): a weight per sequence. Default None.
    zero_division (Union[str, int]): the value of a 0/0 score: 0, 1, or "warn" (0 with a warning). Default "warn".
Returns:
    One dict per entity type ({"precision", "recall", "f1", "number"}: "number" is its gold count), and
    "overall_precision", "overall_recall", "overall_f1" (micro average over entities), "overall_accuracy"
    (the share of tags predicted exactly).
Examples:
    >>> seqeval = evaluate.load(seqeval_metric_path())
    >>> results = seqeval.compute(predictions=[["O", "B-PER", "I-PER"]], references=[["O", "B-PER", "O"]])
    >>> results["overall_f1"], results["overall_accuracy"]
    (0.0, 0.6666666666666666)
"""

_CITATION = """\
@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018},
}
"""

SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")


def check_lengths(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> None:
    """Raise a ValueError naming the first sequence whose prediction and reference differ in length."""
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        if len(pred) != len(ref):
            raise ValueError(f"predictions[{i}] has {len(pred)} tags but references[{i}] has {len(ref)}")


def scheme_class(name: Optional[str]):
    """seqeval's class for a tagging scheme name (None stays None)."""
    if name is None:
        return None
    if name not in SCHEMES:
        raise ValueError(f"scheme must be one of {list(SCHEMES)}, got {name!r}")
    return getattr(importlib.import_module("seqeval.scheme"), name)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Seqeval(evaluate.Metric):
    """The hub's `seqeval` metric (same name, inputs and outputs), from a local script."""

    def _info(self) -> evaluate.MetricInfo:
        tags = datasets.Sequence(datasets.Value("string", id="label"), id="sequence")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            homepage="https://github.com/chakki-works/seqeval",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": tags, "references": tags}),
            codebase_urls=["https://github.com/chakki-works/seqeval"],
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(
        self,
        predictions: List[List[str]],
        references: List[List[str]],
        suffix: bool = False,
        scheme: Optional[str] = None,
        mode: Optional[str] = None,
        sample_weight: Optional[List[float]] = None,
        zero_division: Union[str, int] = "warn",
    ) -> Dict[str, Any]:
        check_lengths(predictions, references)
        report = classification_report(
            y_true=references,
            y_pred=predictions,
            suffix=suffix,
            output_dict=True,
            scheme=scheme_class(scheme),
            mode=mode,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        overall = report.pop("micro avg")
        scores: Dict[str, Any] = {
            label: {
                "precision": row["precision"],
                "recall": row["recall"],
                "f1": row["f1-score"],
                "number": row["support"],
            }
            for label, row in report.items()
            if label not in ("macro avg", "weighted avg")
        }
        scores["overall_precision"] = overall["precision"]
        scores["overall_recall"] = overall["recall"]
        scores["overall_f1"] = overall["f1-score"]
        scores["overall_accuracy"] = accuracy_score(y_true=references, y_pred=predictions)
        return scores
