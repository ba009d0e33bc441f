"""What `spacy train` takes from this package: a learning-rate schedule that follows the data and
`max_epochs`, and a callback that records the training step in the pipeline's meta.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.util import registry
from spacy.vocab import Vocab

from ..errors import ConfigError, InputError

STEP_META_KEY = "spacy_wnut_training"


def steps_per_epoch(corpus: Union[str, Path], batcher: Callable[[Iterable[Any]], Iterator[List[Any]]]) -> int:
    """How many batches `batcher` makes of the docs in `corpus` (a DocBin file or a directory of them)."""
    from ..data.convert import docbin_files, read_docbin

    vocab = Vocab()
    docs = [doc for file in docbin_files(corpus) for doc in read_docbin(file, vocab)]
    if not docs:
        raise InputError(str(corpus), "no documents to size the learning-rate schedule by")
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
        raise ConfigError(
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
