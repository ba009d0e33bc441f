"""Shared fixtures: the WNUT 17 mirror (skipped with a reason where absent) and small files."""
import os
from pathlib import Path

import pytest

MIRROR = Path(os.environ.get("WNUT17_MIRROR", Path(__file__).parents[1].parent / "shared" / "wnut17"))


@pytest.fixture(scope="session")
def wnut_mirror() -> Path:
    """The local copy of the official WNUT 17 files."""
    if not (MIRROR / "wnut17train.conll").exists():
        pytest.skip(f"WNUT 17 mirror not found at {MIRROR} (set WNUT17_MIRROR to its directory)")
    return MIRROR


@pytest.fixture
def write_conll(tmp_path):
    """Write bytes or text to a CoNLL file in a temporary directory and return its path."""

    def write(content, name: str = "data.conll") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write


TINY_WORDS = ["the", "new", "york", "apple", "inc", "watching", "game", "of", "thrones", "tom", "hanks"]


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT with a real WordPiece vocab, saved as a HF directory."""
    import string

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars] + TINY_WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    return path


TRAIN_DATA = [
    ("I love New York so much", [(7, 15, "location")]),
    ("Tom Hanks is watching Game of Thrones", [(0, 9, "person"), (22, 37, "creative-work")]),
    ("apple inc rocks", [(0, 9, "corporation")]),
    ("nothing here at all", []),
]


def make_nlp(transformer: Path, **config):
    """A blank English pipeline with one `wnut_ner` on the given transformer directory."""
    import spacy

    nlp = spacy.blank("en")
    cfg = {"model": {"transformer": {"name": str(transformer)}}}
    cfg.update(config)
    nlp.add_pipe("wnut_ner", config=cfg)
    return nlp


def train_examples(nlp, data=TRAIN_DATA):
    from spacy.training import Example

    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in data]


def overfit(nlp, data=TRAIN_DATA, steps: int = 60, learn_rate: float = 1e-3):
    """Train `nlp` on `data` until it has learned it; returns the last losses."""
    from spacy.util import fix_random_seed

    fix_random_seed(0)
    examples = train_examples(nlp, data)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    losses = {}
    for _ in range(steps):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
    return losses


@pytest.fixture(scope="session")
def trained_nlp(tiny_transformer):
    """A tiny pipeline overfitted on TRAIN_DATA (shared, read-only: do not update it)."""
    nlp = make_nlp(tiny_transformer)
    overfit(nlp)
    return nlp


def ents_of(docs):
    """Entities of docs as comparable (start_char, end_char, label) lists."""
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]
