"""Entities of a trained `wnut_ner` vs the same weights in `pipeline("token-classification")`.

Exports the component as a HF checkpoint, runs both on the sentences of a
DocBin (the component on the gold tokens, the HF pipeline on the text,
`aggregation_strategy="first"`) and compares entities as character spans.
Every sentence where they differ is put down to a cause:

- `invalid_i_start`: the pipeline's argmax tags (first subword per word) hold
  an I-X that follows neither B-X nor I-X; it starts an entity there, while
  constrained Viterbi finds the best valid sequence instead;
- `token_splits_into_words`: a spaCy token is several pipeline "words" (the
  tokenizer splits punctuation: `@user`, `#tag`, `it's`), each labelled on
  its own, while the component labels the token by its first subword;
- `other`: anything else (listed, to be looked at).

    python bench/hf_parity.py training/model-best corpus/test.spacy --output metrics/hf_parity.json
"""
import argparse
import tempfile
from collections import Counter
from typing import Dict, List, Set, Tuple

import spacy
import srsly
from spacy.tokens import Doc, DocBin
from transformers import pipeline

from measure import plain_copy
from spacy_wnut.hf_checkpoint import export_hf, has_invalid_i_start, pipeline_word_tags

Entity = Tuple[int, int, str]


def splits_tokens(doc: Doc, text_entities: Set[Entity]) -> bool:
    """Whether an entity boundary of the pipeline falls inside a spaCy token."""
    starts = {t.idx for t in doc}
    ends = {t.idx + len(t) for t in doc}
    return any(s not in starts or e not in ends for s, e, _ in text_entities)


def compare(nlp, docs: List[Doc], batch_size: int = 64) -> Dict:
    """Count equal and differing entities, and the cause of each differing sentence."""
    with tempfile.TemporaryDirectory() as tmp:
        export_hf(nlp, tmp)
        grouped = pipeline("token-classification", model=tmp, aggregation_strategy="first", device="cpu")
        texts = [doc.text for doc in docs]
        theirs_raw = grouped(texts, batch_size=batch_size)
    ours_docs = list(nlp.pipe((plain_copy(d, nlp.vocab) for d in docs), batch_size=batch_size))
    causes: Counter = Counter()
    examples = []
    same = ours_total = theirs_total = 0
    for doc, theirs_list in zip(ours_docs, theirs_raw):
        ours = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
        theirs = {(e["start"], e["end"], e["entity_group"]) for e in theirs_list}
        same += len(ours & theirs)
        ours_total += len(ours)
        theirs_total += len(theirs)
        if ours == theirs:
            continue
        if has_invalid_i_start(pipeline_word_tags(grouped.model, grouped.tokenizer, doc.text)):
            cause = "invalid_i_start"
        elif splits_tokens(doc, theirs - ours):
            cause = "token_splits_into_words"
        else:
            cause = "other"
        causes[cause] += 1
        if len(examples) < 20:
            examples.append({"text": doc.text, "ours": sorted(ours - theirs), "pipeline": sorted(theirs - ours), "cause": cause})
    return {
        "sentences": len(docs), "entities_ours": ours_total, "entities_pipeline": theirs_total,
        "equal": same, "parity": same / max(ours_total, theirs_total, 1),
        "differing_sentences_by_cause": dict(causes), "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="trained spaCy pipeline with a wnut_ner component")
    parser.add_argument("data", help=".spacy DocBin of sentences")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    docs = list(DocBin().from_disk(args.data).get_docs(nlp.vocab))
    result = compare(nlp, docs)
    print(f"{result['sentences']} sentences: {result['equal']} equal entities of "
          f"{result['entities_ours']} (component) / {result['entities_pipeline']} (HF pipeline): "
          f"parity {result['parity']:.4f}")
    print(f"differing sentences by cause: {result['differing_sentences_by_cause']}")
    if args.output:
        srsly.write_json(args.output, result)


if __name__ == "__main__":
    main()
