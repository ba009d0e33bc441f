"""Subword rows <-> spaCy tokens: aggregation of subword scores, projection of gold tags.

The alignment is spacy-transformers' `Ragged` (built from the tokenizer's
character offsets): for token `i` of the batch, `align[i]` lists the rows of
the flattened `(n_windows * window_length, ...)` subword array it overlaps.
A token may appear in several overlapping windows, and a token may get no
row at all (whitespace, characters the tokenizer drops): those are reported
by `has_rows` and handled by the decoder, never dropped.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy
from thinc.types import Ragged

AGGREGATIONS = ("first", "average", "max")
PROJECTIONS = ("first", "all")


@dataclass
class TokenRows:
    """The (token, row) pairs of an alignment, flat and in token order."""

    tokens: numpy.ndarray
    rows: numpy.ndarray
    n_tokens: int

    @classmethod
    def from_ragged(cls, align: Ragged) -> "TokenRows":
        lengths = numpy.asarray(align.lengths)
        tokens = numpy.repeat(numpy.arange(len(lengths)), lengths)
        return cls(tokens, numpy.asarray(align.dataXd, dtype="i").reshape(-1), len(lengths))

    def has_rows(self) -> numpy.ndarray:
        """(n_tokens,) bool: which tokens have at least one subword."""
        return numpy.bincount(self.tokens, minlength=self.n_tokens) > 0

    def first_per_window(self, window_length: int) -> "TokenRows":
        """Keep each token's first subword in every window it appears in."""
        if len(self.rows) == 0:
            return self
        windows = self.rows // window_length
        order = numpy.lexsort((self.rows, windows, self.tokens))
        tokens, rows, windows = self.tokens[order], self.rows[order], windows[order]
        first = numpy.ones(len(rows), dtype=bool)
        first[1:] = (tokens[1:] != tokens[:-1]) | (windows[1:] != windows[:-1])
        return TokenRows(tokens[first], rows[first], self.n_tokens)


def aggregate(
    probs: numpy.ndarray, pairs: TokenRows, method: str, window_length: int
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Token tag probabilities from subword-row probabilities.

    first: mean over each token's first subword per window (one window: its first subword);
    average: mean over all its subwords; max: the subword whose best tag is most probable.
    Returns (token_probs (n_tokens, n_tags), has_rows (n_tokens,)); tokens
    without rows get all-zero probabilities.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {method!r}")
    n_tags = probs.shape[1]
    out = numpy.zeros((pairs.n_tokens, n_tags), dtype="f")
    has_rows = pairs.has_rows()
    if method == "max":
        confidence = probs[pairs.rows].max(axis=1)
        order = numpy.lexsort((-confidence, pairs.tokens))
        tokens = pairs.tokens[order]
        best = numpy.ones(len(tokens), dtype=bool)
        best[1:] = tokens[1:] != tokens[:-1]
        out[tokens[best]] = probs[pairs.rows[order][best]]
        return out, has_rows
    if method == "first":
        pairs = pairs.first_per_window(window_length)
    numpy.add.at(out, pairs.tokens, probs[pairs.rows])
    counts = numpy.bincount(pairs.tokens, minlength=pairs.n_tokens)
    out[has_rows] /= counts[has_rows, None]
    return out, has_rows


def project_gold(
    token_gold: numpy.ndarray, pairs: TokenRows, method: str, n_rows: int, window_length: int
) -> numpy.ndarray:
    """Per-row gold tag ids from per-token ones (-1: no signal).

    first: only each token's first subword per window is trained (the HF recipe);
    all: every subword carries its token's tag. A row shared by two tokens
    takes the first token's tag.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"label_projection must be one of {PROJECTIONS}, got {method!r}")
    if method == "first":
        pairs = pairs.first_per_window(window_length)
    row_gold = numpy.full(n_rows, -1, dtype="i")
    # Assign in reverse so the earliest token's tag wins on shared rows.
    row_gold[pairs.rows[::-1]] = token_gold[pairs.tokens[::-1]]
    return row_gold
