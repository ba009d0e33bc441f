"""Entity scores from the same examples two ways: spaCy's scorer and seqeval.

Predicted entities are mapped onto the reference tokens exactly as spaCy's
`get_ner_prf` maps them (through `example.alignment.x2y`: an entity covers the
reference tokens its own tokens align to; one over unannotated tokens is
ignored), then written as IOB2 tags for seqeval, so both see the same entities
and agree. Predicted entities that neither can score (no aligned tokens,
unannotated tokens, or landing on another entity's tokens) are counted.
"""
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple, Union

from seqeval.metrics import classification_report
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.training import Corpus, Example
from spacy.training.iob_utils import biluo_to_iob, doc_to_biluo_tags
from tqdm import tqdm


def aligned_iob(example: Example) -> Tuple[List[str], int]:
    """Predicted entities as IOB2 tags over the reference tokens, and how many could not be placed."""
    ref = example.reference
    tags = ["O"] * len(ref)
    x2y = example.alignment.x2y
    unplaced = 0
    for ent in example.predicted.ents:
        indices = x2y[ent.start : ent.end]
        if not len(indices):
            unplaced += 1
            continue
        start, end = int(indices[0]), int(indices[-1]) + 1
        if any(ref[i].ent_iob == 0 for i in range(start, end)) or any(t != "O" for t in tags[start:end]):
            unplaced += 1
            continue
        tags[start] = f"B-{ent.label_}"
        tags[start + 1 : end] = [f"I-{ent.label_}"] * (end - start - 1)
    return tags, unplaced


def seqeval_scores(examples: Iterable[Example]) -> Dict[str, Any]:
    """seqeval's entity-level P/R/F1, overall (micro) and per type, as fractions."""
    examples = list(examples)
    gold = [biluo_to_iob(doc_to_biluo_tags(eg.reference, missing="O")) for eg in examples]
    pred = [aligned_iob(eg)[0] for eg in examples]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        label: {"p": row["precision"], "r": row["recall"], "f": row["f1-score"], "support": int(row["support"])}
        for label, row in report.items()
        if not label.endswith(" avg")
    }
    micro = report["micro avg"]
    return {"p": micro["precision"], "r": micro["recall"], "f": micro["f1-score"], "per_type": per_type}


def unscorable_entities(examples: Iterable[Example]) -> int:
    """Predicted entities that cannot be placed on the reference tokens (see `aligned_iob`)."""
    return sum(aligned_iob(eg)[1] for eg in examples)


def evaluate(
    nlp: Language, data_path: Union[str, Path], *, gold_preproc: bool = True,
    batch_size: int = 64, progress: bool = False,
) -> Dict[str, Any]:
    """Run `nlp` on a DocBin corpus; return spaCy's and seqeval's entity scores side by side."""
    corpus = Corpus(data_path, gold_preproc=gold_preproc)
    examples = list(corpus(nlp))
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    bar = tqdm(docs, total=len(examples), unit="doc", desc="evaluate", disable=not progress)
    scored = [Example(doc, eg.reference) for doc, eg in zip(bar, examples)]
    spacy_scores = get_ner_prf(scored)
    return {
        "spacy": {
            "ents_p": spacy_scores["ents_p"],
            "ents_r": spacy_scores["ents_r"],
            "ents_f": spacy_scores["ents_f"],
            "ents_per_type": spacy_scores["ents_per_type"],
        },
        "seqeval": seqeval_scores(scored),
        "docs": len(scored),
        "unscorable_predicted_entities": unscorable_entities(scored),
    }
