"""Entity scores from the same examples two ways: spaCy's scorer and seqeval.

Predicted entities are mapped onto the reference tokens exactly as spaCy's
`get_ner_prf` maps them (through `example.alignment.x2y`: an entity covers the
reference tokens its own tokens align to; one over unannotated tokens is
ignored), then written as IOB2 tags for seqeval, so both see the same entities
and agree. The one case IOB tags cannot represent, two predictions on the
same reference tokens (possible only with a non-gold tokenization), is counted
and reported; spaCy's scorer counts such a prediction as a false positive.
"""

import importlib.util
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.training import Example
from tqdm import tqdm

from ..data.convert import doc_to_iob
from ..data.corpus import check_corpus, read_examples, warn_unknown_gold_labels
from ..errors import ConfigError


def aligned_iob(example: Example) -> Tuple[List[str], Counter]:
    """Predicted entities as IOB2 tags over the reference tokens, and why any could not be placed.

    Reasons: `no_aligned_tokens` and `unannotated_tokens` (spaCy's scorer ignores
    those too), `overlaps_another_entity` (two predictions on the same reference
    tokens: spaCy's scorer counts the later one as a false positive, IOB tags
    cannot hold it). With the gold tokenization the last cannot happen.
    """
    ref = example.reference
    tags = ["O"] * len(ref)
    x2y = example.alignment.x2y
    skipped: Counter = Counter()
    for ent in example.predicted.ents:
        indices = x2y[ent.start : ent.end]
        if not len(indices):
            skipped["no_aligned_tokens"] += 1
            continue
        start, end = int(indices[0]), int(indices[-1]) + 1
        if any(ref[i].ent_iob == 0 for i in range(start, end)):
            skipped["unannotated_tokens"] += 1
            continue
        if any(t != "O" for t in tags[start:end]):
            skipped["overlaps_another_entity"] += 1
            continue
        tags[start] = f"B-{ent.label_}"
        tags[start + 1 : end] = [f"I-{ent.label_}"] * (end - start - 1)
    return tags, skipped


def iob_tags(examples: Iterable[Example]) -> Tuple[List[List[str]], List[List[str]], Counter]:
    """Gold and predicted IOB2 tags over each example's reference tokens, as seqeval scores them.

    RETURNS (Tuple[List[List[str]], List[List[str]], Counter]): gold tags, predicted tags, and the
        predicted entities that could not be placed, by reason (see `aligned_iob`).
    """
    gold: List[List[str]] = []
    pred: List[List[str]] = []
    unscorable: Counter = Counter()
    for eg in examples:
        gold.append(doc_to_iob(eg.reference))
        tags, skipped = aligned_iob(eg)
        pred.append(tags)
        unscorable.update(skipped)
    return gold, pred, unscorable


def seqeval_scores(examples: Iterable[Example]) -> Dict[str, Any]:
    """seqeval's entity-level P/R/F1, overall (micro) and per type, as fractions.

    Also returns `unscorable`: predicted entities that could not be placed on
    the reference tokens, by reason (see `aligned_iob`).
    """
    from seqeval.metrics import classification_report
    from seqeval.metrics.sequence_labeling import get_entities

    gold, pred, unscorable = iob_tags(examples)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        label: {"p": row["precision"], "r": row["recall"], "f": row["f1-score"], "support": int(row["support"])}
        for label, row in report.items()
        if not label.endswith(" avg")
    }
    micro = report["micro avg"]
    gold_ents = {(i, e) for i, tags in enumerate(gold) for e in get_entities(tags)}
    pred_ents = {(i, e) for i, tags in enumerate(pred) for e in get_entities(tags)}
    return {
        "p": micro["precision"],
        "r": micro["recall"],
        "f": micro["f1-score"],
        "per_type": per_type,
        "true_positives": len(gold_ents & pred_ents),
        "predicted": len(pred_ents),
        "gold": len(gold_ents),
        "unscorable": dict(unscorable),
    }


def predict_examples(
    nlp: Language, examples: List[Example], *, batch_size: int = 64, progress: bool = False
) -> List[Example]:
    """Run `nlp` over the examples' predicted docs and pair its output with the gold docs."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    bar = tqdm(docs, total=len(examples), unit="doc", desc="predict", disable=not progress)
    return [Example(doc, eg.reference) for doc, eg in zip(bar, examples)]


def evaluate(
    nlp: Language,
    data_path: Union[str, Path],
    *,
    gold_preproc: bool = True,
    batch_size: int = 64,
    progress: bool = False,
) -> Dict[str, Any]:
    """Run `nlp` on a DocBin corpus; return spaCy's and seqeval's entity scores side by side.

    Gold labels the pipeline cannot predict are warned about and listed (`gold_labels_unknown_to_model`).
    """
    examples = read_examples(nlp, data_path, gold_preproc=gold_preproc)
    unknown = warn_unknown_gold_labels(nlp, examples, data_path)
    scored = predict_examples(nlp, examples, batch_size=batch_size, progress=progress)
    spacy_scores = get_ner_prf(scored)
    # seqeval comes with `[train]`; a run-time install scores with spaCy's scorer alone.
    seqeval = seqeval_scores(scored) if importlib.util.find_spec("seqeval") else {"unscorable": None}
    return {
        "spacy": {
            "ents_p": spacy_scores["ents_p"],
            "ents_r": spacy_scores["ents_r"],
            "ents_f": spacy_scores["ents_f"],
            "ents_per_type": spacy_scores["ents_per_type"],
        },
        "seqeval": seqeval,
        "docs": len(scored),
        "unscorable_predicted_entities": seqeval.pop("unscorable"),
        "gold_labels_unknown_to_model": unknown,
    }


def run_evaluation(
    model: Union[str, Path],
    data: Union[str, Path],
    output: Union[str, Path, None] = None,
    *,
    batch_size: int = 64,
    gold_preproc: bool = True,
    progress: bool = False,
    overwrite: bool = False,
    min_score: Optional[float] = None,
) -> Dict[str, Any]:
    """`evaluate` with timing and alignment counts; the JSON (if `output`) is written atomically.

    The output path and the data are checked before the pipeline runs.
    overwrite (bool): replace an existing output file.
    min_score (Optional[float]): score with entities below this probability dropped (None: the pipeline's).
    """
    import time

    import srsly

    from ..data.outputs import FILE, atomic_path, check_output
    from ..pipeline.component import load_pipeline

    if output is not None:
        check_output(output, [data], overwrite=overwrite, kind=FILE)
    check_corpus(data, gold_preproc=gold_preproc)
    from .annotate import load_for_annotation

    nlp = load_pipeline(model) if min_score is None else load_for_annotation(model, min_score=min_score)
    start = time.perf_counter()
    result = evaluate(nlp, data, gold_preproc=gold_preproc, batch_size=batch_size, progress=progress)
    result["seconds"] = time.perf_counter() - start
    result["alignment_stats"] = {
        name: dict(pipe.alignment_stats) for name, pipe in nlp.pipeline if hasattr(pipe, "alignment_stats")
    }
    if output is not None:
        with atomic_path(output) as tmp:
            srsly.write_json(tmp, result)
    return result
