"""Subword rows <-> spaCy tokens: the alignment, aggregation of subword scores, projection of gold tags.

The alignment is a `Ragged` built from the tokenizer's character offsets
(`align_offsets`, the rule of spacy-transformers' `get_alignment_via_offset_mapping`,
vectorised): for token `i` of the batch, `align[i]` lists the rows of
the flattened `(n_windows * window_length, ...)` subword array it overlaps.
A token may appear in several overlapping windows, and a token may get no
row at all (whitespace, characters the tokenizer drops): those are reported
by `has_rows` and handled by the decoder, never dropped.
"""

from dataclasses import dataclass
from typing import List, Tuple

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Span
from thinc.types import Ragged

from ..errors import ConfigError

AGGREGATIONS = ("first", "average", "max")
PROJECTIONS = ("first", "all")


def align_offsets(windows: List[Tuple[int, Span]], offsets: numpy.ndarray, doc_lengths: numpy.ndarray) -> Ragged:
    """Which subword rows each token of the batch overlaps, from the subwords' character offsets.

    A token owns its characters and the one after it (a following space, or
    the first character of a token written against it, which that token
    takes); a subword row belongs to every token owning one of its
    characters. Rows are numbered over the flattened windows
    (`window * width + position`); each token's rows are sorted.

    windows (List[Tuple[int, Span]]): (doc index in the batch, window span), in row order.
    offsets (numpy.ndarray): (n_windows, width, 2) character offsets of each subword in its window's text.
    doc_lengths (numpy.ndarray): tokens per doc of the batch.
    RETURNS (Ragged): per token of the batch (docs concatenated), its rows.
    """
    width = offsets.shape[1] if offsets.ndim == 3 else 0
    n_tokens = int(doc_lengths.sum())
    doc_starts = numpy.concatenate([[0], numpy.cumsum(doc_lengths)]).astype("int64")
    token_arrays = {}
    tokens, rows = [], []
    for w, (doc_index, span) in enumerate(windows):
        doc = span.doc
        if id(doc) not in token_arrays:
            token_arrays[id(doc)] = doc.to_array([IDX, LENGTH]).reshape(-1, 2).astype("int64")
        idx_len = token_arrays[id(doc)][span.start : span.end]
        starts = idx_len[:, 0] - span.start_char
        ends = starts + idx_len[:, 1] + 1
        begin, end = offsets[w, :, 0], offsets[w, :, 1]
        n_chars = numpy.maximum(end - begin, 0)
        pieces = numpy.repeat(numpy.arange(width), n_chars)
        within = numpy.arange(len(pieces)) - numpy.repeat(numpy.cumsum(n_chars) - n_chars, n_chars)
        chars = begin[pieces] + within
        owner = numpy.searchsorted(starts, chars, side="right") - 1
        owned = (owner >= 0) & (chars >= 0)
        owned[owned] = chars[owned] < ends[owner[owned]]
        tokens.append(doc_starts[doc_index] + span.start + owner[owned])
        rows.append(w * width + pieces[owned])
    if not tokens:
        return Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((n_tokens,), dtype="i"))
    n_rows = max(1, len(windows) * width)
    keys = numpy.unique(numpy.concatenate(tokens) * n_rows + numpy.concatenate(rows))
    token_of_key = keys // n_rows
    lengths = numpy.bincount(token_of_key, minlength=n_tokens).astype("i")
    return Ragged((keys % n_rows).astype("i"), lengths)


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
        raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {method!r}")
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
        raise ConfigError(f"label_projection must be one of {PROJECTIONS}, got {method!r}")
    if method == "first":
        pairs = pairs.first_per_window(window_length)
    row_gold = numpy.full(n_rows, -1, dtype="i")
    # Assign in reverse so the earliest token's tag wins on shared rows.
    row_gold[pairs.rows[::-1]] = token_gold[pairs.tokens[::-1]]
    return row_gold
