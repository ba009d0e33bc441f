"""The BIO tag scheme, constrained Viterbi decoding, and tags -> entity spans.

Tags are laid out as `O, B-l0, I-l0, B-l1, I-l1, ...` for labels `l0, l1, ...`,
so a tag id's label is `(id - 1) // 2` and its prefix is B for odd ids, I for
even ids above 0. Everything works on whole batches: docs are concatenated and
their lengths given separately.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy

# "viterbi": the best valid BIO sequence; "argmax": each token's best tag, grouped
# as the transformers token-classification pipeline groups them.
DECODERS = ("viterbi", "argmax")
# Finite stand-in for log(0): keeps sums free of inf - inf = nan.
FORBIDDEN = -1e9


@dataclass(frozen=True)
class TagScheme:
    """BIO tags over a fixed tuple of entity labels."""

    labels: Sequence[str]

    @property
    def tags(self) -> List[str]:
        """Tag names in id order: O, then B-/I- per label."""
        return ["O"] + [f"{p}-{label}" for label in self.labels for p in ("B", "I")]

    @property
    def n_tags(self) -> int:
        return 1 + 2 * len(self.labels)

    def is_inside(self) -> numpy.ndarray:
        """Boolean mask over tag ids: True for I- tags."""
        ids = numpy.arange(self.n_tags)
        return (ids > 0) & (ids % 2 == 0)

    def allowed_transitions(self) -> numpy.ndarray:
        """(n_tags, n_tags) mask: `allowed[prev, cur]` is False only for I-X after anything but B-X/I-X."""
        ids = numpy.arange(self.n_tags)
        label = (ids - 1) // 2
        inside = self.is_inside()
        same_label = (label[:, None] == label[None, :]) & (ids[:, None] > 0)
        return ~inside[None, :] | same_label


def viterbi(
    log_probs: numpy.ndarray, lengths: numpy.ndarray, allowed: numpy.ndarray
) -> numpy.ndarray:
    """Best tag sequence per doc under the transition mask, for a whole batch at once.

    log_probs: (n_tokens, n_tags) for all docs concatenated.
    lengths: tokens per doc. allowed: (n_tags, n_tags) transition mask; the
    first tag of a doc is constrained as if it followed `O` (tag 0).
    Returns (n_tokens,) tag ids.
    """
    n_docs = len(lengths)
    n_tags = log_probs.shape[1]
    if n_docs == 0 or log_probs.shape[0] == 0:
        return numpy.zeros((0,), dtype="i")
    max_len = int(lengths.max())
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
    positions = numpy.arange(max_len)[None, :]
    active = positions < lengths[:, None]  # (n_docs, max_len)
    token_index = (starts[:, None] + positions)[active]
    emissions = numpy.zeros((n_docs, max_len, n_tags), dtype="f")
    emissions[active] = log_probs[token_index]
    transitions = numpy.where(allowed, 0.0, FORBIDDEN).astype("f")
    score = transitions[0][None, :] + emissions[:, 0]
    backpointers = numpy.zeros((n_docs, max_len, n_tags), dtype="i")
    identity = numpy.arange(n_tags, dtype="i")
    for t in range(1, max_len):
        candidates = score[:, :, None] + transitions[None, :, :]
        best_prev = candidates.argmax(axis=1)
        new_score = numpy.take_along_axis(candidates, best_prev[:, None, :], axis=1)[:, 0]
        step = active[:, t][:, None]
        score = numpy.where(step, new_score + emissions[:, t], score)
        # Past a doc's end the path stays put, so backtracking passes through unchanged.
        backpointers[:, t] = numpy.where(step, best_prev, identity[None, :])
    best = numpy.zeros((n_docs, max_len), dtype="i")
    current = score.argmax(axis=1).astype("i")
    doc_ids = numpy.arange(n_docs)
    for t in range(max_len - 1, -1, -1):
        best[:, t] = current
        current = backpointers[doc_ids, t, current]
    return best[active]


@dataclass
class EntitySpans:
    """Entities found in a batch of concatenated docs: token offsets into the batch."""

    starts: numpy.ndarray
    ends: numpy.ndarray
    label_ids: numpy.ndarray
    scores: numpy.ndarray


def tags_to_spans(
    tag_ids: numpy.ndarray, token_scores: numpy.ndarray, lengths: Optional[numpy.ndarray] = None
) -> EntitySpans:
    """Entities of BIO tag ids, with the mean token score of each.

    An entity starts at each B-X and runs while I-X follows. An I-X that does
    not continue an X (after O, after another label, or first in a doc) starts
    an entity, as the transformers pipeline groups argmax tags; Viterbi's
    valid sequences never hold one. `lengths` (tokens per doc) keeps entities
    inside their doc; without it the batch is one doc.
    """
    n = len(tag_ids)
    label = (tag_ids - 1) // 2  # -1 for O
    inside = (tag_ids > 0) & (tag_ids % 2 == 0)
    first_in_doc = numpy.zeros(n, dtype=bool)
    doc_starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]) if lengths is not None else numpy.array([0])
    first_in_doc[doc_starts[doc_starts < n]] = True
    previous_label = numpy.concatenate([[-1], label[:-1]])
    continues = inside & ~first_in_doc & (previous_label == label)
    starts = numpy.flatnonzero((tag_ids > 0) & ~continues)
    stops = numpy.append(numpy.flatnonzero(~continues), n)
    ends = stops[numpy.searchsorted(stops, starts, side="right")]
    label_ids = label[starts]
    cumulative = numpy.concatenate([[0.0], numpy.cumsum(token_scores, dtype="f8")])
    scores = (cumulative[ends] - cumulative[starts]) / numpy.maximum(ends - starts, 1)
    return EntitySpans(starts, ends, label_ids, scores.astype("f"))
