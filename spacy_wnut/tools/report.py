"""An evaluation report people can look at: one self-contained HTML file and a console summary.

Overall and per-type P/R/F1 (spaCy's scorer and seqeval side by side), a
token-level label confusion matrix and a per-type F1 bar chart (PNG, embedded),
and the sentences with the most entity errors rendered by displaCy, gold
beside prediction.
"""

import base64
import html
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy
from spacy import displacy
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from ..errors import require
from .scoring import seqeval_scores

OUTSIDE = "O"


@dataclass
class Report:
    """Everything the HTML page and the console summary show."""

    spacy_scores: Dict[str, Any]
    seqeval: Dict[str, Any]
    labels: List[str]
    confusion: numpy.ndarray  # (gold label, predicted label) token counts, O last
    worst: List[Tuple[int, Example]]  # (entity errors, example), worst first
    n_docs: int
    calibration: Optional[Dict[str, Any]] = None  # `calibration_of`: measures, threshold curve, choices


def token_labels(doc: Doc) -> List[str]:
    """Entity type of each token, `O` outside entities."""
    return [token.ent_type_ or OUTSIDE for token in doc]


def confusion_matrix(examples: Sequence[Example], labels: Sequence[str]) -> numpy.ndarray:
    """Token counts by (gold type, predicted type) over gold tokens, `O` as the last row/column."""
    names = list(labels) + [OUTSIDE]
    index = {name: i for i, name in enumerate(names)}
    matrix = numpy.zeros((len(names), len(names)), dtype="i")
    for eg in examples:
        predicted = ["O"] * len(eg.reference)
        for ent in eg.predicted.ents:
            for i in eg.alignment.x2y[ent.start : ent.end]:
                predicted[int(i)] = ent.label_
        for gold, pred in zip(token_labels(eg.reference), predicted):
            matrix[index.get(gold, index[OUTSIDE]), index.get(pred, index[OUTSIDE])] += 1
    return matrix


def entity_errors(example: Example) -> int:
    """False positives plus false negatives of one example (character spans with label)."""
    gold = {(e.start_char, e.end_char, e.label_) for e in example.reference.ents}
    pred = {(e.start_char, e.end_char, e.label_) for e in example.predicted.ents}
    return len(gold ^ pred)


def build_report(examples: Sequence[Example], n_worst: int = 20) -> Report:
    """Scores, confusion matrix and worst sentences of predicted examples."""
    examples = list(examples)
    spacy_scores = get_ner_prf(examples)
    seq = seqeval_scores(examples)
    labels = sorted({e.label_ for eg in examples for doc in (eg.reference, eg.predicted) for e in doc.ents})
    errors = [(entity_errors(eg), i) for i, eg in enumerate(examples)]
    worst = [(n, examples[i]) for n, i in sorted(errors, key=lambda x: (-x[0], x[1])) if n > 0][:n_worst]
    return Report(spacy_scores, seq, labels, confusion_matrix(examples, labels), worst, len(examples))


def calibration_of(nlp, examples: Sequence[Example], target_precision: Optional[float]) -> Dict[str, Any]:
    """The entity probabilities on `examples` at the component's temperature: ECE, Brier, reliability,
    and precision / recall / F1 against `min_score`, with the thresholds chosen from it."""
    from ..pipeline.component import find_wnut_pipe
    from ..training.calibration import EntityOutcomes, choose_thresholds, threshold_curve

    _, pipe = find_wnut_pipe(nlp)
    outcomes = EntityOutcomes(nlp, examples)
    measures = outcomes.measures(pipe.temperature)
    n_gold = sum(len(eg.reference.ents) for eg in examples)
    curve = threshold_curve(numpy.exp(outcomes.log_probs(pipe.temperature)), outcomes.correct, n_gold)
    return {
        **measures,
        "curve": curve,
        "chosen": choose_thresholds(curve, target_precision),
        "target_precision": target_precision,
    }


def _data_url(png: str) -> str:
    return f"data:image/png;base64,{png}"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(report: Report) -> Dict[str, str]:
    """The confusion matrix and per-type F1 bars as base64 PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report.labels + [OUTSIDE]
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(names), 0.8 + 0.7 * len(names)))
    shown = numpy.log1p(report.confusion)
    ax.imshow(shown, cmap="Blues")
    for (i, j), value in numpy.ndenumerate(report.confusion):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if shown[i, j] > shown.max() / 2 else "black",
        )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Token labels: gold vs predicted")
    confusion_png = _png(fig)
    plt.close(fig)

    per_type = report.seqeval["per_type"]
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(len(per_type), 1)))
    types = sorted(per_type, key=lambda label: per_type[label]["f"])
    ax.barh(types, [per_type[t]["f"] for t in types], color="#4c72b0")
    for y, label in enumerate(types):
        ax.text(per_type[label]["f"] + 0.01, y, f"{per_type[label]['f']:.3f}", va="center", fontsize=8)
    ax.axvline(report.seqeval["f"], color="#c44e52", linestyle="--", label=f"overall {report.seqeval['f']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (seqeval)")
    ax.legend(loc="lower right")
    f1_png = _png(fig)
    plt.close(fig)
    images = {"confusion": confusion_png, "f1": f1_png}
    if report.calibration is not None:
        images.update(calibration_charts(report.calibration, plt))
    return images


def calibration_charts(calibration: Dict[str, Any], plt) -> Dict[str, str]:
    """The reliability diagram and the precision / recall / F1 curve against `min_score`, as base64 PNGs."""
    fig, ax = plt.subplots(figsize=(5, 5))
    bins = [row for row in calibration["reliability"] if row["count"]]
    ax.bar([row["low"] for row in bins], [row["accuracy"] for row in bins], width=0.1, align="edge",
           color="#4c72b0", edgecolor="white", label="share correct")  # fmt: skip
    ax.plot([0, 1], [0, 1], color="#c44e52", linestyle="--", label="perfect calibration")
    ax.set_xlabel("entity probability")
    ax.set_ylabel("share of entities that are correct")
    ax.set_title(f"Reliability (ECE {calibration['ece']:.3f}, T = {calibration['temperature']:.2f})")
    ax.legend(loc="upper left")
    reliability_png = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    curve = calibration["curve"]
    thresholds = [row["threshold"] for row in curve]
    for key, name, color in (("p", "precision", "#4c72b0"), ("r", "recall", "#55a868"), ("f", "F1", "#c44e52")):
        ax.plot(thresholds, [row[key] for row in curve], label=name, color=color)
    best = calibration["chosen"]["best_f1"]
    ax.axvline(best["threshold"], color="#c44e52", linestyle=":", label=f"best F1 at {best['threshold']:.2f}")
    target = calibration["chosen"]["target"]
    if target is not None:
        ax.axvline(target["threshold"], color="#4c72b0", linestyle=":",
                   label=f"P >= {calibration['target_precision']:g} from {target['threshold']:.2f}")  # fmt: skip
    ax.set_xlabel("min_score")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower left", fontsize=8)
    curve_png = _png(fig)
    plt.close(fig)
    return {"reliability": reliability_png, "threshold": curve_png}


def render_html(report: Report, title: str = "spacy-wnut evaluation") -> str:
    """The whole report as one HTML page (images inlined)."""
    images = charts(report)
    s, q = report.spacy_scores, report.seqeval
    rows = [("spaCy scorer", s["ents_p"], s["ents_r"], s["ents_f"]), ("seqeval", q["p"], q["r"], q["f"])]
    overall = "".join(f"<tr><td>{n}</td><td>{p:.4f}</td><td>{r:.4f}</td><td>{f:.4f}</td></tr>" for n, p, r, f in rows)
    per_type_rows = []
    for label in sorted(q["per_type"]):
        ours = (s.get("ents_per_type") or {}).get(label, {"p": 0.0, "r": 0.0, "f": 0.0})
        seq = q["per_type"][label]
        per_type_rows.append(
            f"<tr><td>{html.escape(label)}</td><td>{ours['p']:.4f}</td><td>{ours['r']:.4f}</td><td>{ours['f']:.4f}</td>"
            f"<td>{seq['p']:.4f}</td><td>{seq['r']:.4f}</td><td>{seq['f']:.4f}</td><td>{seq['support']}</td></tr>"
        )
    worst = []
    for errors, eg in report.worst:
        with warnings.catch_warnings():  # W006: one side of a pair may have no entities
            warnings.filterwarnings("ignore", message=r"\[W006\]")
            gold = displacy.render(eg.reference, style="ent", jupyter=False)
            pred = displacy.render(eg.predicted, style="ent", jupyter=False)
        worst.append(
            f'<div class="pair"><div class="errors">{errors} entity error(s)</div>'
            f'<div class="side"><h4>gold</h4>{gold}</div><div class="side"><h4>predicted</h4>{pred}</div></div>'
        )
    calibration = ""
    if report.calibration is not None:
        c = report.calibration
        chosen = c["chosen"]
        lines = [
            f"<p>{c['entities']} predicted entities, {c['accuracy']:.1%} correct (exact span and label); mean "
            f"probability {c['mean_probability']:.3f} at temperature {c['temperature']:.2f}; ECE {c['ece']:.4f}, "
            f"Brier {c['brier']:.4f}. Highest F1 with <code>min_score</code> {chosen['best_f1']['threshold']:.2f} "
            f"(P {chosen['best_f1']['p']:.3f}, R {chosen['best_f1']['r']:.3f}, F1 {chosen['best_f1']['f']:.3f})."
        ]
        if c["target_precision"] is not None:
            target = chosen["target"]
            lines.append(
                f"<p>Precision {c['target_precision']:g} or more: <code>min_score</code> {target['threshold']:.2f} "
                f"(P {target['p']:.3f}, R {target['r']:.3f})."
                if target is not None
                else f"<p>No threshold reaches precision {c['target_precision']:g} on this set."
            )
        calibration = (
            '<h2>Entity probabilities</h2><div id="calibration">' + "".join(lines) + "</div>"
            f'<img id="reliability-chart" alt="reliability diagram" src="{_data_url(images["reliability"])}">'
            f'<img id="threshold-chart" alt="P/R/F1 against min_score" src="{_data_url(images["threshold"])}">'
        )
    return _PAGE.format(
        calibration=calibration,
        title=html.escape(title),
        n_docs=report.n_docs,
        overall=overall,
        per_type="".join(per_type_rows),
        confusion=images["confusion"],
        f1=images["f1"],
        n_worst=len(report.worst),
        worst="".join(worst),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }}
td:first-child {{ text-align: left; }}
.pair {{ border-top: 1px solid #ddd; padding: 0.5em 0; }}
.side {{ display: inline-block; vertical-align: top; width: 48%; margin-right: 1%; }}
.errors {{ font-weight: bold; color: #c44e52; }}
</style></head><body>
<h1>{title}</h1>
<p>{n_docs} documents, gold tokens.</p>
<h2>Overall</h2>
<table id="overall"><tr><th>scorer</th><th>P</th><th>R</th><th>F1</th></tr>{overall}</table>
<h2>Per type</h2>
<table id="per-type"><tr><th>type</th><th>spaCy P</th><th>spaCy R</th><th>spaCy F1</th>
<th>seqeval P</th><th>seqeval R</th><th>seqeval F1</th><th>support</th></tr>{per_type}</table>
<h2>Charts</h2>
<img id="f1-chart" alt="per-type F1" src="data:image/png;base64,{f1}">
<img id="confusion-chart" alt="label confusion matrix" src="data:image/png;base64,{confusion}">
{calibration}
<h2>The {n_worst} sentences with the most entity errors</h2>
<div id="worst">{worst}</div>
</body></html>
"""


def write_report(
    model: Union[str, Path],
    data: Union[str, Path],
    output: Union[str, Path],
    *,
    n_worst: int = 20,
    batch_size: int = 64,
    overwrite: bool = False,
    target_precision: Optional[float] = 0.8,
) -> Report:
    """Score `model` on `data` and write the HTML report to `output` (atomically); returns the report.

    The output path and the data are checked before the pipeline runs.
    overwrite (bool): replace an existing output file.
    target_precision (Optional[float]): also name the lowest `min_score` reaching this precision.
    """
    require("report", ["matplotlib"], "report")
    from ..data.corpus import check_corpus, read_examples, warn_unknown_gold_labels
    from ..data.outputs import FILE, atomic_path, check_output
    from ..errors import ConfigError
    from ..pipeline.component import load_pipeline
    from .scoring import predict_examples

    if n_worst < 0:
        raise ConfigError(f"--worst must be 0 or more, got {n_worst}")
    check_output(output, [data], overwrite=overwrite, kind=FILE)
    check_corpus(data)
    nlp = load_pipeline(model)
    examples = read_examples(nlp, data)
    warn_unknown_gold_labels(nlp, examples, data)
    report = build_report(predict_examples(nlp, examples, batch_size=batch_size), n_worst=n_worst)
    report.calibration = calibration_of(nlp, read_examples(nlp, data), target_precision)
    with atomic_path(output) as tmp:
        tmp.write_text(render_html(report, title=f"{model} on {data}"), encoding="utf-8")
    return report
