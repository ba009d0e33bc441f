"""Entity probabilities: marginals of the tag-sequence distribution that the constrained Viterbi decodes.

The decoder scores a doc's BIO tag sequence `y` as `sum_t e_t(y_t) + sum_t a(y_{t-1}, y_t)`: `e` are
the tokens' log-probabilities (entity tags raised by `entity_bias`, tokens without subwords given
their prior) and `a` is 0 for an allowed transition and -inf for a forbidden one (the first tag
follows `O`). Normalised at a temperature `T`, this is a linear-chain distribution
`p(y) = exp(score(y) / T) / Z`, whose most likely sequence is the Viterbi path at every `T`.

The probability of an entity, tokens `[s, e)` with label `l`, is the probability that exactly this
span is tagged so: `y_s = B-l`, `y_t = I-l` inside, and the tag after it (if any) is not `I-l`. It
is computed with forward-backward in log space, for a whole batch of docs at once.
"""

from dataclasses import dataclass

import numpy

NEG_INF = -numpy.inf


def logsumexp(values: numpy.ndarray, axis: int) -> numpy.ndarray:
    """log(sum(exp(values))) along `axis`, stable, and -inf (not nan) where every value is -inf."""
    top = numpy.max(values, axis=axis, keepdims=True)
    top = numpy.where(numpy.isfinite(top), top, 0.0)
    with numpy.errstate(divide="ignore"):
        summed = numpy.log(numpy.sum(numpy.exp(values - top), axis=axis, keepdims=True))
    return numpy.squeeze(summed + top, axis=axis)


def transition_log_scores(allowed: numpy.ndarray) -> numpy.ndarray:
    """(n_tags, n_tags) log-scores: 0 for an allowed transition, -inf for a forbidden one."""
    return numpy.where(allowed, 0.0, NEG_INF)


@dataclass
class ChainScores:
    """Forward-backward log-scores of a batch of docs, padded to the longest doc.

    emissions, alpha, beta: (n_docs, max_len, n_tags); log_z: (n_docs,); active: (n_docs, max_len)
    marks real tokens; offsets: each doc's first token in the concatenated batch.
    """

    emissions: numpy.ndarray
    alpha: numpy.ndarray
    beta: numpy.ndarray
    log_z: numpy.ndarray
    active: numpy.ndarray
    offsets: numpy.ndarray
    lengths: numpy.ndarray


def chain_scores(
    log_probs: numpy.ndarray, doc_lengths: numpy.ndarray, allowed: numpy.ndarray, temperature: float = 1.0
) -> ChainScores:
    """Forward and backward log-scores of a whole batch of docs at once (docs concatenated in `log_probs`).

    log_probs (numpy.ndarray): (n_tokens, n_tags) tag log-scores, as the Viterbi decodes them.
    doc_lengths (numpy.ndarray): tokens per doc.
    allowed (numpy.ndarray): (n_tags, n_tags) transition mask.
    temperature (float): the scores are divided by it (1: the model's own distribution).
    RETURNS (ChainScores): the padded forward and backward scores.
    """
    lengths = numpy.asarray(doc_lengths, dtype=int)
    n_docs, n_tags, max_len = len(lengths), log_probs.shape[1], int(lengths.max(initial=0))
    offsets = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]).astype(int)
    positions = numpy.arange(max_len)[None, :]
    active = positions < lengths[:, None]
    emissions = numpy.zeros((n_docs, max_len, n_tags))
    emissions[active] = numpy.asarray(log_probs, dtype="f8")[(offsets[:, None] + positions)[active]] / temperature
    transitions = transition_log_scores(allowed)
    alpha = numpy.zeros((n_docs, max_len, n_tags))
    beta = numpy.zeros((n_docs, max_len, n_tags))
    if max_len:
        alpha[:, 0] = transitions[0][None, :] + emissions[:, 0]
    for t in range(1, max_len):
        step = logsumexp(alpha[:, t - 1, :, None] + transitions[None], axis=1) + emissions[:, t]
        alpha[:, t] = numpy.where(active[:, t, None], step, alpha[:, t - 1])
    for t in range(max_len - 2, -1, -1):
        step = logsumexp(transitions[None] + (emissions[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = numpy.where(active[:, t + 1, None], step, 0.0)
    log_z = logsumexp(alpha[:, -1], axis=1) if max_len else numpy.zeros((n_docs,))  # alpha stays put past a doc's end
    return ChainScores(emissions, alpha, beta, log_z, active, offsets, lengths)


def tag_marginals(
    log_probs: numpy.ndarray, doc_lengths: numpy.ndarray, allowed: numpy.ndarray, temperature: float = 1.0
) -> numpy.ndarray:
    """Probability of each tag at each token under the constrained tag-sequence distribution.

    Arguments as `chain_scores`.
    RETURNS (numpy.ndarray): (n_tokens, n_tags) marginals (rows sum to 1), docs concatenated.
    """
    if len(log_probs) == 0:
        return numpy.zeros((0, log_probs.shape[1]))
    chain = chain_scores(log_probs, doc_lengths, allowed, temperature)
    log_marginals = chain.alpha + chain.beta - chain.log_z[:, None, None]
    return numpy.exp(log_marginals[chain.active])


def entity_log_probs(
    log_probs: numpy.ndarray,
    doc_lengths: numpy.ndarray,
    allowed: numpy.ndarray,
    starts: numpy.ndarray,
    ends: numpy.ndarray,
    label_ids: numpy.ndarray,
    temperature: float = 1.0,
) -> numpy.ndarray:
    """`span_log_probs` for a whole batch at once: docs concatenated, spans as offsets into the batch.

    log_probs, doc_lengths, allowed, temperature: as `chain_scores`.
    starts, ends, label_ids (numpy.ndarray): the entities (token offsets into the batch, end exclusive).
    RETURNS (numpy.ndarray): (n_entities,) log-probabilities.
    """
    if len(starts) == 0:
        return numpy.zeros((0,))
    chain = chain_scores(log_probs, doc_lengths, allowed, temperature)
    emissions, beta, lengths, offsets = chain.emissions, chain.beta, chain.lengths, chain.offsets
    n_docs, max_len, n_tags = emissions.shape
    transitions = transition_log_scores(allowed)
    doc = numpy.searchsorted(offsets, starts, side="right") - 1
    # empty docs share their offset with the next doc: searchsorted picks the last of them, the one with tokens
    start, end = starts - offsets[doc], ends - offsets[doc]
    begin, inside = 1 + 2 * label_ids, 2 + 2 * label_ids
    cumulative = numpy.concatenate([numpy.zeros((n_docs, 1, n_tags)), numpy.cumsum(emissions, axis=1)], axis=1)
    inside_sum = cumulative[doc, end, inside] - cumulative[doc, numpy.minimum(start + 1, end), inside]
    last = numpy.where(end - start == 1, begin, inside)
    following = numpy.minimum(end, max_len - 1)
    onward = transitions[last] + emissions[doc, following] + beta[doc, following]
    onward[numpy.arange(len(starts)), inside] = NEG_INF
    tail = numpy.where(end < lengths[doc], logsumexp(onward, axis=1), 0.0)
    return chain.alpha[doc, start, begin] + inside_sum + tail - chain.log_z[doc]
