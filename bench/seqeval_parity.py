"""The packaged seqeval metric for HF `evaluate` against spaCy's scorer and `seqeval_scores`, on one
pipeline's predictions for a gold corpus: every overall and per-type P/R/F1 compared with `==`.

    python bench/seqeval_parity.py PIPELINE TEST.spacy OUT.json
"""

import json
import sys
from pathlib import Path

import spacy
from spacy.scorer import get_ner_prf

from spacy_wnut.data.corpus import read_examples
from spacy_wnut.tools.scoring import iob_tags, predict_examples, seqeval_scores
from spacy_wnut.training.hf_metric import load_seqeval_metric


def main(pipeline: str, test: str, out: str) -> None:
    nlp = spacy.load(pipeline)
    scored = predict_examples(nlp, read_examples(nlp, test), batch_size=64)
    gold, pred, unscorable = iob_tags(scored)
    metric = load_seqeval_metric().compute(predictions=pred, references=gold)
    ours, spacy_scores = seqeval_scores(scored), get_ner_prf(scored)
    rows = {"overall": (metric["overall_precision"], metric["overall_recall"], metric["overall_f1"])}
    rows["overall"] += (
        (ours["p"], ours["r"], ours["f"]),
        (spacy_scores["ents_p"], spacy_scores["ents_r"], spacy_scores["ents_f"]),
    )
    report = {"docs": len(scored), "unscorable": dict(unscorable), "rows": {}}
    same = True
    for label in sorted(ours["per_type"]):
        m, o, s = metric[label], ours["per_type"][label], spacy_scores["ents_per_type"][label]
        trio = [(m["precision"], m["recall"], m["f1"]), (o["p"], o["r"], o["f"]), (s["p"], s["r"], s["f"])]
        report["rows"][label] = trio
        same &= trio[0] == trio[1] == trio[2]
    m, o, s = rows["overall"][:3], rows["overall"][3], rows["overall"][4]
    report["rows"]["overall"] = [list(m), list(o), list(s)]
    same &= tuple(m) == tuple(o) == tuple(s)
    report["identical"] = bool(same)
    Path(out).write_text(json.dumps(report, indent=2))
    print(f"{len(scored)} docs; evaluate metric == seqeval_scores == spaCy's scorer, every P/R/F1: {same}")
    for label, trio in report["rows"].items():
        print(f"{label:15s} " + "  ".join(f"{p:.17g}/{r:.17g}/{f:.17g}" for p, r, f in trio[:1]))


if __name__ == "__main__":
    main(*sys.argv[1:4])
