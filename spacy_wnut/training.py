"""What `spacy train` takes from this package: a learning-rate schedule that follows the data and
`max_epochs`, and a callback that records the training step in the pipeline's meta.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import DocBin
from spacy.util import registry
from spacy.vocab import Vocab

STEP_META_KEY = "spacy_wnut_training"


def steps_per_epoch(corpus: Union[str, Path], batcher: Callable[[Iterable[Any]], Iterator[List[Any]]]) -> int:
    """How many batches `batcher` makes of the docs in `corpus` (a DocBin file or a directory of them)."""
    path = Path(corpus)
    files = sorted(path.glob("**/*.spacy")) if path.is_dir() else [path]
    vocab = Vocab()
    docs = [doc for file in files for doc in DocBin().from_disk(file).get_docs(vocab)]
    if not docs:
        raise ValueError(f"{corpus}: no documents to size the learning-rate schedule by")
    return sum(1 for _ in batcher(docs))


def total_training_steps(
    max_epochs: int, max_steps: int, accumulate_gradient: int, per_epoch: Optional[Callable[[], int]]
) -> int:
    """Optimizer steps of a `spacy train` run: `max_epochs` epochs or `max_steps` steps, whichever is fewer."""
    limits = []
    if max_steps > 0:
        limits.append(max_steps)
    if max_epochs > 0 and per_epoch is not None:
        limits.append(max_epochs * max(1, per_epoch() // max(1, accumulate_gradient)))
    if not limits:
        raise ValueError(
            "the learning-rate schedule needs `total_steps`, or `training.max_steps`, or "
            "`training.max_epochs` with a training corpus to count batches in"
        )
    return min(limits)


@registry.schedules("spacy_wnut.warmup_linear.v1")
def warmup_linear(
    initial_rate: float,
    warmup_steps: int,
    max_epochs: int = 0,
    max_steps: int = 0,
    accumulate_gradient: int = 1,
    train_corpus: Optional[str] = None,
    batcher: Optional[Callable] = None,
    total_steps: Optional[int] = None,
) -> Iterator[float]:
    """Linear warm-up to `initial_rate`, then linear decay to 0 at the end of training.

    The end is `total_steps` if given, else derived: `max_epochs` times the
    batches `batcher` makes of `train_corpus` (usually `${paths.train}` and
    `${training.batcher}`), or `max_steps` if that comes first. The corpus is
    counted when warm-up ends, so resolving the config costs nothing.
    """
    step = 0
    end: Optional[int] = total_steps
    while True:
        if step < warmup_steps:
            yield initial_rate * step / max(1, warmup_steps)
        else:
            if end is None:
                per_epoch = None
                if train_corpus and batcher is not None:
                    per_epoch = lambda: steps_per_epoch(train_corpus, batcher)  # noqa: E731
                end = total_training_steps(max_epochs, max_steps, accumulate_gradient, per_epoch)
            yield initial_rate * max(0.0, (end - step) / max(1.0, end - warmup_steps))
        step += 1


@registry.callbacks("spacy_wnut.record_training_step.v1")
def record_training_step() -> Callable[[Language, Dict[str, Any]], None]:
    """A `[training.before_update]` callback: keep the current step and epoch in `nlp.meta`,
    so that `model-best/meta.json` says at which step the best model was saved."""

    def record(nlp: Language, info: Dict[str, Any]) -> None:
        nlp.meta[STEP_META_KEY] = {"step": int(info["step"]), "epoch": int(info["epoch"])}

    return record


def selected_step(pipeline: Union[str, Path]) -> int:
    """The training step at which a pipeline saved by `spacy train` was selected (`record_training_step`)."""
    import srsly

    meta_path = Path(pipeline) / "meta.json"
    if not meta_path.is_file():
        raise ValueError(f"{meta_path}: missing; {pipeline} is not a saved pipeline")
    step = srsly.read_json(meta_path).get(STEP_META_KEY, {}).get("step")
    if not step:
        raise ValueError(
            f"{meta_path}: no training step recorded; train with "
            '`[training] before_update = {"@callbacks":"spacy_wnut.record_training_step.v1"}`'
        )
    return int(step)


def train_final(
    config_path: Union[str, Path],
    selected: Union[str, Path],
    output: Union[str, Path],
    train: List[Union[str, Path]],
    dev: Union[str, Path],
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
) -> Dict[str, Any]:
    """Retrain `config_path` on all of `train` (e.g. train and dev) for the step count at which
    `selected` was chosen, on the selection run's learning-rate schedule, and save it with
    `selected`'s `entity_bias` to `output` (atomically).

    The selection run's schedule length is derived again from its own training
    corpus (`overrides["paths.train"]`, or the config's) and `max_epochs`, so the
    final model sees the same learning rate at each step; it stops at the
    selected step, and its last state is saved (no model is chosen on `dev`,
    which it was trained on).
    """
    import tempfile

    from spacy.cli.train import train as spacy_train
    from spacy.util import load_config

    from .component import load_pipeline
    from .outputs import atomic_path, check_output

    overrides = dict(overrides or {})
    check_output(output, [selected, *train, dev])
    step = selected_step(selected)
    bias = load_pipeline(selected).get_pipe("wnut_ner").entity_bias
    config = load_config(config_path, overrides=overrides, interpolate=True)
    total = _schedule_end(config)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train"
        corpus.mkdir()
        for i, path in enumerate(train):
            for j, file in enumerate(_docbins(Path(path))):
                (corpus / f"{i:02d}-{j:03d}.spacy").symlink_to(Path(file).resolve())
        final_overrides = {
            **overrides,
            "paths.train": str(corpus),
            "paths.dev": str(dev),
            "training.max_steps": step,
            "training.max_epochs": 0,
            "training.eval_frequency": step,
            "training.optimizer.learn_rate.total_steps": total,
        }
        spacy_train(config_path, Path(tmp) / "out", use_gpu=gpu_id, overrides=final_overrides)
        nlp = load_pipeline(
            Path(tmp) / "out" / "model-last", config={"components": {"wnut_ner": {"entity_bias": bias}}}
        )
        nlp.meta[STEP_META_KEY] = {
            "step": step,
            "epoch": None,
            "final": True,
            "schedule_steps": total,
            "train": [str(p) for p in train],
        }
        with atomic_path(output) as out:
            nlp.to_disk(out)
    return {"steps": step, "total_steps": total, "entity_bias": bias}


def _docbins(path: Path) -> List[Path]:
    from .convert import docbin_files

    return docbin_files(path)


def _schedule_end(config) -> int:
    """The step at which the selection run's learning rate reached 0 (its `total_steps`)."""
    given = config["training"]["optimizer"]["learn_rate"].get("total_steps")
    if given:
        return int(given)
    training = config["training"]
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    corpus = config["paths"]["train"]
    if not corpus:
        raise ValueError("the config has no `paths.train` to derive the selection run's schedule from")
    return total_training_steps(
        training["max_epochs"],
        training["max_steps"],
        training["accumulate_gradient"],
        lambda: steps_per_epoch(corpus, batcher),
    )
