"""Test helpers (fixtures are in `conftest.py`): tiny pipelines, training data, comparisons."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_WORDS = ["the", "new", "york", "apple", "inc", "watching", "game", "of", "thrones", "tom", "hanks"]


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


def train_shipped_config(transformer: Path, tmp: Path, max_steps: int = 12) -> Path:
    """`spacy train configs/distilbert.cfg` as shipped on TRAIN_DATA (train = dev), a few steps; RETURNS model-last."""
    import spacy
    from spacy.cli.train import train
    from spacy.tokens import DocBin

    DocBin(docs=[eg.reference for eg in train_examples(spacy.blank("en"))]).to_disk(tmp / "data.spacy")
    train(
        ROOT / "configs" / "distilbert.cfg",
        tmp / "out",
        overrides={
            "paths.transformer": str(transformer),
            "paths.train": str(tmp / "data.spacy"),
            "paths.dev": str(tmp / "data.spacy"),
            "training.max_steps": max_steps,
            "training.eval_frequency": max_steps // 2,
            "training.max_epochs": 0,
            "training.logger.progress_bar": None,
        },
    )
    return tmp / "out" / "model-last"


def ents_of(docs):
    """Entities of docs as comparable (start_char, end_char, label) lists."""
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def bench_module(name: str):
    """A module of `bench/` (scripts, not a package), imported as the scripts import each other."""
    bench = str(ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module(name)


def wnut_command(*args) -> list:
    """The command line `python -m spacy_wnut ARGS` (arguments as strings), for `subprocess`."""
    return [sys.executable, "-m", "spacy_wnut", *map(str, args)]


def save_renamed(nlp, path: Path, name: str) -> Path:
    """Save `nlp` (one `wnut_ner` component) to `path` with that component named `name`."""
    nlp.to_disk(path)
    config = (path / "config.cfg").read_text(encoding="utf-8")
    config = config.replace("[components.wnut_ner", f"[components.{name}").replace(
        'pipeline = ["wnut_ner"]', f'pipeline = ["{name}"]'
    )
    (path / "config.cfg").write_text(config, encoding="utf-8")
    (path / "wnut_ner").rename(path / name)
    return path
