"""Batching by subword length: every item exactly once, padded size bounded."""

import spacy
from spacy.training import Example
from spacy.util import registry


def test_batches_hold_every_item_once_within_padded_size(tiny_transformer):
    from transformers import AutoTokenizer

    nlp = spacy.blank("en")
    texts = ["hi", "https://t.co/xyz123abc", "#GameOfThrones tonight", "new york", "a b c d e f"] * 7
    examples = [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in texts]
    batcher = registry.batchers.get("spacy_wnut.batch_by_subwords.v1")(str(tiny_transformer), size=60)
    batches = list(batcher(examples))
    assert sorted(id(eg) for b in batches for eg in b) == sorted(id(eg) for eg in examples)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_transformer))
    length = {t: len(tokenizer(t)["input_ids"]) for t in set(texts)}
    for batch in batches:
        longest = max(length[eg.predicted.text] for eg in batch)
        assert len(batch) == 1 or longest * len(batch) <= 60


def test_shipped_config_batches_by_subwords():
    from pathlib import Path

    from spacy import util

    config = util.load_config(Path(__file__).parents[2] / "configs" / "distilbert.cfg")
    assert config["training"]["batcher"]["@batchers"] == "spacy_wnut.batch_by_subwords.v1"
