"""Entities of `wnut_ner` vs the same weights in `pipeline("token-classification")`.

Takes a trained spaCy pipeline (exported as a HF checkpoint for the HF side)
or, with `--hf`, a HF checkpoint (imported with `from_hf` for the spaCy side),
runs both on the sentences of a DocBin (the HF pipeline on the text,
`aggregation_strategy="first"`) and compares entities as character spans, in
two set-ups of the component:

- `hf_compatible`: the component on the pipeline's own words
  (`pipeline_words_doc`) with `decoder="argmax"`: the same decisions, so every
  entity should be equal; any difference is listed;
- `default`: the component as users run it, on the gold WNUT tokens with
  constrained Viterbi. Every sentence where it differs is put down to a cause:

- `invalid_i_start`: the pipeline's argmax tags (first subword per word) hold
  an I-X that follows neither B-X nor I-X; it starts an entity there, while
  constrained Viterbi finds the best valid sequence instead;
- `token_splits_into_words`: a spaCy token is several pipeline "words" (the
  tokenizer splits punctuation: `@user`, `#tag`, `it's`), each labelled on
  its own, while the component labels the token by its first subword;
- `other`: anything else (listed, to be looked at).

    python bench/hf_parity.py training/model-best corpus/test.spacy --output metrics/hf_parity.json
    python bench/hf_parity.py --hf training/bench/hf-recipe-our-hparams/best corpus/test.spacy
"""

import argparse
import tempfile
from collections import Counter
from typing import Callable, Dict, Iterable, List, Set, Tuple

import spacy
import srsly
from spacy.tokens import Doc, DocBin
from transformers import pipeline

from spacy_wnut.tools.hf_checkpoint import export_hf, from_hf, pipeline_words_doc

from measure import plain_copy

Entity = Tuple[int, int, str]


def pipeline_word_tags(hf_model, tokenizer, text: str) -> List[str]:
    """The tag `pipeline(..., aggregation_strategy="first")` gives each of its words.

    A word is a run of subwords whose later pieces carry the tokenizer's
    continuing-subword prefix (`##`): punctuation splits words, unlike spaCy.
    """
    import torch

    encoded = tokenizer(text, return_tensors="pt", truncation=True, return_special_tokens_mask=True)
    special = encoded.pop("special_tokens_mask")[0].tolist()
    with torch.inference_mode():
        ids = hf_model(**encoded).logits[0].argmax(-1).tolist()
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    prefix = getattr(tokenizer._tokenizer.model, "continuing_subword_prefix", None) or "##"
    return [
        hf_model.config.id2label[i]
        for i, piece, is_special in zip(ids, pieces, special)
        if not is_special and not piece.startswith(prefix)
    ]


def has_invalid_i_start(tags: List[str]) -> bool:
    """Whether an IOB2 `I-X` follows a tag other than `B-X`/`I-X`.

    The HF pipeline starts an entity there; constrained Viterbi instead picks
    the best valid sequence, so the two may differ on such a sentence.
    """
    return any(tag.startswith("I-") and previous[2:] != tag[2:] for previous, tag in zip(["O"] + tags[:-1], tags))


def splits_tokens(doc: Doc, text_entities: Set[Entity]) -> bool:
    """Whether an entity boundary of the pipeline falls inside a spaCy token."""
    starts = {t.idx for t in doc}
    ends = {t.idx + len(t) for t in doc}
    return any(s not in starts or e not in ends for s, e, _ in text_entities)


def compare(nlp, checkpoint: str, docs: List[Doc], batch_size: int = 64) -> Dict:
    """Both set-ups of the component against the pipeline on `checkpoint` (the same weights)."""
    grouped = pipeline("token-classification", model=checkpoint, aggregation_strategy="first", device="cpu")
    theirs = [
        {(e["start"], e["end"], e["entity_group"]) for e in ents}
        for ents in grouped([doc.text for doc in docs], batch_size=batch_size)
    ]
    pipe = nlp.get_pipe("wnut_ner")
    pipe.decoder = "argmax"
    words_docs = [pipeline_words_doc(nlp.vocab, grouped.tokenizer, doc.text) for doc in docs]
    hf_compatible = _count(nlp.pipe(words_docs, batch_size=batch_size), theirs, lambda doc, diff: "other")
    pipe.decoder = "viterbi"

    def cause(doc: Doc, pipeline_only: Set[Entity]) -> str:
        if has_invalid_i_start(pipeline_word_tags(grouped.model, grouped.tokenizer, doc.text)):
            return "invalid_i_start"
        return "token_splits_into_words" if splits_tokens(doc, pipeline_only) else "other"

    gold_tokens = (plain_copy(d, nlp.vocab) for d in docs)
    default = _count(nlp.pipe(gold_tokens, batch_size=batch_size), theirs, cause)
    return {"sentences": len(docs), "hf_compatible": hf_compatible, "default": default}


def _count(ours_docs: Iterable[Doc], theirs: List[Set[Entity]], cause: Callable[[Doc, Set[Entity]], str]) -> Dict:
    """Equal entities, and the cause of each sentence that differs."""
    causes: Counter = Counter()
    examples = []
    same = ours_total = theirs_total = 0
    for doc, their_ents in zip(ours_docs, theirs):
        ours = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
        same += len(ours & their_ents)
        ours_total += len(ours)
        theirs_total += len(their_ents)
        if ours == their_ents:
            continue
        why = cause(doc, their_ents - ours)
        causes[why] += 1
        if len(examples) < 20:
            examples.append(
                {
                    "text": doc.text,
                    "ours": sorted(ours - their_ents),
                    "pipeline": sorted(their_ents - ours),
                    "cause": why,
                }
            )
    return {
        "entities_ours": ours_total,
        "entities_pipeline": theirs_total,
        "equal": same,
        "parity": same / max(ours_total, theirs_total, 1),
        "differing_sentences_by_cause": dict(causes),
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "model", help="trained spaCy pipeline with a wnut_ner component (or, with --hf, a HF checkpoint)"
    )
    parser.add_argument("data", help=".spacy DocBin of sentences")
    parser.add_argument("--hf", action="store_true", help="MODEL is a HF token-classification checkpoint")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.hf:
            nlp, checkpoint = from_hf(args.model), args.model
        else:
            nlp = spacy.load(args.model)
            checkpoint = str(export_hf(nlp, tmp))
        docs = list(DocBin().from_disk(args.data).get_docs(nlp.vocab))
        result = compare(nlp, checkpoint, docs)
    for setup in ("hf_compatible", "default"):
        r = result[setup]
        print(
            f"{setup}: {result['sentences']} sentences: {r['equal']} equal entities of "
            f"{r['entities_ours']} (component) / {r['entities_pipeline']} (HF pipeline): parity {r['parity']:.4f}; "
            f"differing sentences by cause: {r['differing_sentences_by_cause']}"
        )
    if args.output:
        srsly.write_json(args.output, result)


if __name__ == "__main__":
    main()
