"""Which texts to send for correction: the per-text uncertainty, and a seeded, streaming selection.

Uncertainty of a text is one minus its lowest token margin, where a token's
margin is the difference between its best and second-best IOB2 tag
probability. The probabilities are the tag marginals of the distribution the
decoder decodes (`decode.tag_probs`: the component's token probabilities, its
`entity_bias`, the allowed transitions and its calibrated `temperature`), the
same distribution the entity probabilities come from. A text the model is
sure of everywhere scores near 0; a text with one token the model cannot
decide between two tags scores near 1. Tokens with no subword (whitespace)
have no margin of their own and are left out; a text without such a token
scores 0.

`Selector` is the one selection `export-tasks --select` and the active-learning
simulation (`bench/active_learning.py`) use: it keeps the `limit` best items of
a stream in bounded memory.
"""

import heapq
import random
from typing import Any, Generic, Iterable, List, Optional, Tuple, TypeVar

import numpy

from ...errors import ConfigError

SELECTIONS = ("uncertain", "random", "all")
T = TypeVar("T")


def token_margins(probs: numpy.ndarray, has_rows: numpy.ndarray) -> numpy.ndarray:
    """Best minus second-best tag probability of every token (1.0 for tokens with no subword).

    probs (numpy.ndarray): (n_tokens, n_tags) IOB2 tag probabilities (`decode.tag_probs`).
    has_rows (numpy.ndarray): (n_tokens,) whether each token had a subword.
    RETURNS (numpy.ndarray): (n_tokens,) margins in [0, 1].
    """
    probs = numpy.asarray(probs, dtype="f8")
    if probs.shape[0] == 0:
        return numpy.zeros((0,), dtype="f8")
    if probs.shape[1] < 2:
        return numpy.ones((probs.shape[0],), dtype="f8")
    top2 = -numpy.partition(-probs, 1, axis=1)[:, :2]
    margins = numpy.clip(top2[:, 0] - top2[:, 1], 0.0, 1.0)
    return numpy.where(numpy.asarray(has_rows, dtype=bool), margins, 1.0)


def text_uncertainty(margins: numpy.ndarray) -> float:
    """One minus the lowest token margin of a text (0.0 for a text with no token).

    margins (numpy.ndarray): the text's token margins (`token_margins`).
    RETURNS (float): the uncertainty, in [0, 1].
    """
    if len(margins) == 0:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - float(numpy.min(margins)))))


def check_selection(how: str, limit: Optional[int]) -> None:
    """Refuse an unknown selection or a limit below 1."""
    if how not in SELECTIONS:
        raise ConfigError(f"--select must be one of {', '.join(SELECTIONS)}, got {how!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"--limit must be a whole number of at least 1, got {limit!r}")


class Selector(Generic[T]):
    """Keep the `limit` items a selection prefers, from a stream, in the order it prefers them.

    "uncertain": the most uncertain first (ties: input order); "random": a
    uniform sample in random order, the same for the same `seed` and stream;
    "all": input order. Memory holds `limit` items (all of them without a limit).

    how (str): "uncertain", "random" or "all".
    limit (Optional[int]): how many to keep; None keeps all.
    seed (int): the random selection's seed.
    """

    def __init__(self, how: str = "all", limit: Optional[int] = None, seed: int = 0) -> None:
        check_selection(how, limit)
        self.how, self.limit = how, limit
        self._rng = random.Random(seed)
        self._heap: List[Tuple[Tuple[float, int], Any]] = []  # (negated rank, item): the worst kept on top
        self._seen = 0

    def _rank(self, uncertainty: float) -> Tuple[float, int]:
        """Smaller ranks first: the order the items come out in."""
        index = self._seen
        if self.how == "uncertain":
            return (-float(uncertainty), index)
        if self.how == "random":
            return (self._rng.random(), index)
        return (float(index), index)

    def add(self, item: T, uncertainty: float = 0.0) -> None:
        """Offer one item of the stream, with its text's uncertainty."""
        rank = self._rank(uncertainty)
        self._seen += 1
        entry = ((-rank[0], -rank[1]), item)
        if self.limit is None or len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif entry[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def extend(self, pairs: Iterable[Tuple[T, float]]) -> "Selector[T]":
        """Offer (item, uncertainty) pairs; returns the selector."""
        for item, uncertainty in pairs:
            self.add(item, uncertainty)
        return self

    @property
    def seen(self) -> int:
        """How many items were offered."""
        return self._seen

    def selected(self) -> List[T]:
        """The kept items, best first."""
        return [item for _, item in sorted(self._heap, key=lambda entry: entry[0], reverse=True)]


def select_indices(
    uncertainties: Iterable[float], how: str = "uncertain", limit: Optional[int] = None, seed: int = 0
) -> List[int]:
    """Indices of the items a selection keeps, best first (`Selector` over a list).

    uncertainties (Iterable[float]): each item's text uncertainty, in order.
    RETURNS (List[int]): the selected positions.
    """
    selector: Selector[int] = Selector(how, limit, seed)
    for index, uncertainty in enumerate(uncertainties):
        selector.add(index, uncertainty)
    return selector.selected()
