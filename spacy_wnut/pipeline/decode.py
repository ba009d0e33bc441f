"""The BIO tag scheme, constrained Viterbi decoding, and tags -> entity spans.

Tags are laid out as `O, B-l0, I-l0, B-l1, I-l1, ...` for labels `l0, l1, ...`,
so a tag id's label is `(id - 1) // 2` and its prefix is B for odd ids, I for
even ids above 0. Everything works on whole batches: docs are concatenated and
their lengths given separately.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

import numpy

from ..errors import ConfigError
from ..ml.alignment import TokenRows, aggregate
from .marginals import entity_log_probs, tag_marginals

if TYPE_CHECKING:
    from ..ml.head import SubwordScores
    from .schemes import HeadScheme

# "viterbi": the best valid BIO sequence; "argmax": each token's best tag, grouped
# as the transformers token-classification pipeline groups them.
DECODERS = ("viterbi", "argmax")
# Finite stand-in for log(0): keeps sums free of inf - inf = nan.
FORBIDDEN = -1e9
# Decoding prior for a token with no subword (whitespace, characters the
# tokenizer drops): it may continue an entity across itself, never start one.
_NO_ROWS_LOG_PROB = {"O": 0.0, "I": numpy.log(0.5), "B": -1e4}


@dataclass(frozen=True)
class TagScheme:
    """BIO tags over a fixed tuple of entity labels."""

    labels: Tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))

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
        return _allowed_transitions(self.labels)

    def no_rows_prior(self) -> numpy.ndarray:
        """Log-probabilities for a token with no subword: O or I- (continuing), never B-."""
        return _no_rows_prior(self.labels)


@lru_cache(maxsize=64)
def _allowed_transitions(labels: Tuple[str, ...]) -> numpy.ndarray:
    scheme = TagScheme(labels)
    ids = numpy.arange(scheme.n_tags)
    label = (ids - 1) // 2
    inside = scheme.is_inside()
    same_label = (label[:, None] == label[None, :]) & (ids[:, None] > 0)
    allowed = ~inside[None, :] | same_label
    allowed.flags.writeable = False  # shared by every caller
    return allowed


@lru_cache(maxsize=64)
def _no_rows_prior(labels: Tuple[str, ...]) -> numpy.ndarray:
    prior = numpy.array([_NO_ROWS_LOG_PROB[tag[0]] for tag in TagScheme(labels).tags], dtype="f")
    prior.flags.writeable = False
    return prior


def viterbi(log_probs: numpy.ndarray, lengths: numpy.ndarray, allowed: numpy.ndarray) -> numpy.ndarray:
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
    if n_docs == 1:
        return _viterbi_one(log_probs.astype("f", copy=False), _transition_scores(allowed))
    max_len = int(lengths.max())
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
    positions = numpy.arange(max_len)[None, :]
    active = positions < lengths[:, None]  # (n_docs, max_len)
    token_index = (starts[:, None] + positions)[active]
    emissions = numpy.zeros((n_docs, max_len, n_tags), dtype="f")
    emissions[active] = log_probs[token_index]
    transitions = _transition_scores(allowed)[None, :, :]
    score = transitions[0, 0][None, :] + emissions[:, 0]
    backpointers = numpy.zeros((n_docs, max_len, n_tags), dtype="i")
    identity = numpy.arange(n_tags, dtype="i")
    all_active = bool(active.all())
    for t in range(1, max_len):
        candidates = score[:, :, None] + transitions
        best_prev = candidates.argmax(axis=1)
        new_score = candidates.max(axis=1) + emissions[:, t]
        if all_active:
            score = new_score
            backpointers[:, t] = best_prev
        else:
            step = active[:, t][:, None]
            score = numpy.where(step, new_score, score)
            # Past a doc's end the path stays put, so backtracking passes through unchanged.
            backpointers[:, t] = numpy.where(step, best_prev, identity[None, :])
    best = numpy.zeros((n_docs, max_len), dtype="i")
    current = score.argmax(axis=1).astype("i")
    doc_ids = numpy.arange(n_docs)
    for t in range(max_len - 1, -1, -1):
        best[:, t] = current
        current = backpointers[doc_ids, t, current]
    return best[active]


def _transition_scores(allowed: numpy.ndarray) -> numpy.ndarray:
    return numpy.where(allowed, 0.0, FORBIDDEN).astype("f")


def _viterbi_one(emissions: numpy.ndarray, transitions: numpy.ndarray) -> numpy.ndarray:
    """`viterbi` for a single doc (the batch-of-one case, where per-step overhead is all there is)."""
    n = len(emissions)
    score = transitions[0] + emissions[0]
    backpointers = numpy.zeros((n, emissions.shape[1]), dtype="i")
    for t in range(1, n):
        candidates = score[:, None] + transitions
        backpointers[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + emissions[t]
    path = numpy.zeros((n,), dtype="i")
    path[-1] = score.argmax()
    for t in range(n - 1, 0, -1):
        path[t - 1] = backpointers[t, path[t]]
    return path


@dataclass
class EntitySpans:
    """Entities found in a batch of concatenated docs: token offsets into the batch."""

    starts: numpy.ndarray
    ends: numpy.ndarray
    label_ids: numpy.ndarray
    scores: numpy.ndarray

    def keep(self, mask: numpy.ndarray) -> "EntitySpans":
        """The entities where `mask` is True."""
        return EntitySpans(self.starts[mask], self.ends[mask], self.label_ids[mask], self.scores[mask])


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


@dataclass
class TokenProbs:
    """IOB2 tag probabilities per token of a batch (docs concatenated).

    probs: (n_tokens, n_tags); has_rows: which tokens had at least one subword
    (the others have all-zero probabilities and are decoded with a prior).
    """

    probs: numpy.ndarray
    has_rows: numpy.ndarray
    doc_lengths: numpy.ndarray


@dataclass
class TaggedBatch:
    """Decoded predictions for a batch: entity spans over the concatenated docs."""

    doc_lengths: numpy.ndarray
    entities: EntitySpans
    encoder_output: Optional[List[Any]] = None  # each doc's DocEncoderOutput, with store_trf_data


def softmax(scores: numpy.ndarray) -> numpy.ndarray:
    """Row-wise softmax of (n, n_tags) scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = numpy.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def token_probs(output: "SubwordScores", head: "HeadScheme", aggregation: str) -> TokenProbs:
    """Subword scores -> softmax -> aggregated onto tokens -> IOB2 tag probabilities.

    head: the tags the head predicts; a non-IOB2 head (imported checkpoint)
    has its probabilities summed onto the IOB2 tags (`HeadScheme.to_bio`).
    """
    probs = softmax(numpy.asarray(output.scores, dtype="f"))
    pairs = TokenRows.from_ragged(output.align)
    per_token, has_rows = aggregate(probs, pairs, aggregation, output.window_length)
    if not head.is_bio():
        per_token = per_token @ head.to_bio()
    return TokenProbs(per_token, has_rows, numpy.asarray(output.doc_lengths))


def tag_log_scores(probs: TokenProbs, scheme: TagScheme, entity_bias: float = 0.0) -> numpy.ndarray:
    """The tag log-scores the decoder and the marginals share: log-probabilities, entity tags raised
    by `entity_bias`, tokens without subwords given the scheme's prior.

    RETURNS (numpy.ndarray): (n_tokens, n_tags).
    """
    log_probs = numpy.log(numpy.maximum(probs.probs, 1e-12))
    log_probs[:, 1:] += entity_bias
    log_probs[~probs.has_rows] = scheme.no_rows_prior()
    return log_probs


def tag_probs(
    probs: TokenProbs, scheme: TagScheme, entity_bias: float = 0.0, temperature: float = 1.0
) -> numpy.ndarray:
    """Each token's tag probabilities under the decoder's tag-sequence distribution (`marginals.tag_marginals`).

    RETURNS (numpy.ndarray): (n_tokens, n_tags), rows summing to 1.
    """
    log_probs = tag_log_scores(probs, scheme, entity_bias)
    return tag_marginals(log_probs, probs.doc_lengths, scheme.allowed_transitions(), temperature)


def decode_entities(
    probs: TokenProbs, scheme: TagScheme, decoder: str, entity_bias: float = 0.0, temperature: float = 1.0
) -> EntitySpans:
    """Token probabilities -> tags (entity tags' log-probabilities raised by `entity_bias`) -> spans,
    each scored with its probability (`marginals.entity_log_probs` at `temperature`).

    Tags come from constrained Viterbi (`decoder="viterbi"`), or per token
    (`"argmax"`, grouped as the transformers pipeline groups them).
    """
    if decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    log_probs = tag_log_scores(probs, scheme, entity_bias)
    if decoder == "argmax":
        tags = log_probs.argmax(axis=1).astype("i")
    else:
        tags = viterbi(log_probs, probs.doc_lengths, scheme.allowed_transitions())
    token_scores = numpy.take_along_axis(probs.probs, tags[:, None], axis=1)[:, 0]
    spans = tags_to_spans(tags, token_scores, probs.doc_lengths)
    allowed = scheme.allowed_transitions()
    log_p = entity_log_probs(
        log_probs, probs.doc_lengths, allowed, spans.starts, spans.ends, spans.label_ids, temperature
    )
    spans.scores = numpy.exp(log_p).astype("f")
    return spans
