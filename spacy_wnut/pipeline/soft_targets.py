"""A teacher's soft targets: stored per spaCy token on the doc, projected onto a student's subwords, and
the distillation loss that trains on them.

A teacher's targets are its IOB2 tag log-probabilities per **spaCy token** (the softmax of its subword
scores aggregated onto tokens, `decode.token_probs`), so a student with another subword tokenizer learns
from them: they meet the student's subwords through the tokens, as gold tags do (`project_gold`). They
live in `doc.user_data[SOFT_TARGETS_KEY]`, which a `DocBin(store_user_data=True)` keeps.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..errors import ConfigError, InputError
from ..ml.alignment import TokenRows, project_gold
from .decode import softmax
from .marginals import logsumexp

SOFT_TARGETS_KEY = "spacy_wnut.soft_targets"


@dataclass
class SoftTargets:
    """A teacher's tag log-probabilities for each token of one doc.

    tags (Tuple[str, ...]): the teacher's IOB2 tags, in column order.
    log_probs (numpy.ndarray): (n_tokens, n_tags) float32; NaN rows for tokens the teacher saw no subword of.
    """

    tags: Tuple[str, ...]
    log_probs: numpy.ndarray

    @property
    def has_target(self) -> numpy.ndarray:
        """(n_tokens,) bool: which tokens carry a target."""
        return ~numpy.isnan(self.log_probs).any(axis=1)

    def to_user_data(self) -> Dict[str, Any]:
        """The msgpack-able form stored in `doc.user_data`."""
        array = numpy.ascontiguousarray(self.log_probs, dtype="<f4")
        return {"tags": list(self.tags), "shape": list(array.shape), "log_probs": array.tobytes()}

    @classmethod
    def from_user_data(cls, data: Dict[str, Any], where: str) -> "SoftTargets":
        """Read what `to_user_data` wrote; `InputError` naming `where` for anything else."""
        try:
            shape = tuple(int(n) for n in data["shape"])
            array = numpy.frombuffer(data["log_probs"], dtype="<f4").reshape(shape)
            tags = tuple(str(tag) for tag in data["tags"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                where, f"damaged soft targets in the doc's user_data ({type(err).__name__}: {err})"
            ) from None
        if len(shape) != 2 or shape[1] != len(tags):
            raise InputError(where, f"soft targets of shape {shape} do not match their {len(tags)} tags")
        return cls(tags, array)


def set_soft_targets(doc: Doc, targets: SoftTargets) -> None:
    """Store `targets` on `doc` (one row per token)."""
    if targets.log_probs.shape[0] != len(doc):
        raise ValueError(f"{targets.log_probs.shape[0]} target rows for a doc of {len(doc)} tokens")
    doc.user_data[SOFT_TARGETS_KEY] = targets.to_user_data()


def get_soft_targets(doc: Doc, where: str = "doc") -> Optional[SoftTargets]:
    """The targets stored on `doc`, or None when it has none."""
    data = doc.user_data.get(SOFT_TARGETS_KEY)
    if data is None:
        return None
    targets = SoftTargets.from_user_data(data, where)
    if targets.log_probs.shape[0] != len(doc):
        raise InputError(where, f"{targets.log_probs.shape[0]} soft-target rows for a doc of {len(doc)} tokens")
    return targets


def target_labels(doc: Doc) -> Tuple[str, ...]:
    """The entity labels of the teacher whose targets `doc` carries (none without targets)."""
    data = doc.user_data.get(SOFT_TARGETS_KEY)
    if data is None:
        return ()
    return tuple(sorted({str(tag)[2:] for tag in data.get("tags", ()) if str(tag) != "O"}))


def sentence_doc(sent: Span) -> Doc:
    """`sent.as_doc()`, keeping the sentence's share of its doc's soft targets (which `as_doc` drops)."""
    doc = sent.as_doc()
    targets = get_soft_targets(sent.doc)
    if targets is not None:
        set_soft_targets(doc, SoftTargets(targets.tags, targets.log_probs[sent.start : sent.end]))
    return doc


def aligned_targets(example: Example, tags: Sequence[str]) -> Optional[numpy.ndarray]:
    """The reference doc's targets on the predicted doc's tokens, in the columns of `tags`.

    A predicted token takes the target of the reference token it is aligned to one-to-one; any other
    token (split or merged by another tokenization) gets none, as `get_aligned_ner` gives such a token no
    gold. RETURNS (Optional[numpy.ndarray]): (n_predicted_tokens, len(tags)) log-probabilities, NaN rows
    where there is no target; None when the example has no targets.
    """
    targets = get_soft_targets(example.reference, "the example's reference doc")
    if targets is None:
        return None
    columns = _columns(targets.tags, tags)
    x2y = example.alignment.x2y
    y2x = example.alignment.y2x
    x_lengths = numpy.asarray(x2y.lengths)
    y_lengths = numpy.asarray(y2x.lengths)
    y_of_x = numpy.full(len(x_lengths), -1, dtype="i")
    single = x_lengths == 1
    starts = numpy.concatenate([[0], numpy.cumsum(x_lengths)[:-1]]).astype("i")
    y_data = numpy.asarray(x2y.data).reshape(-1)
    y_of_x[single] = y_data[starts[single]]
    one_to_one = single.copy()
    one_to_one[single] = y_lengths[y_of_x[single]] == 1
    out = numpy.full((len(x_lengths), len(tags)), numpy.nan, dtype="f")
    out[one_to_one] = targets.log_probs[y_of_x[one_to_one]][:, columns]
    return out


def _columns(teacher_tags: Sequence[str], student_tags: Sequence[str]) -> numpy.ndarray:
    """Each student tag's column among the teacher's; `ConfigError` when the tag sets differ."""
    if set(teacher_tags) != set(student_tags):
        missing = sorted(set(student_tags) - set(teacher_tags))
        extra = sorted(set(teacher_tags) - set(student_tags))
        raise ConfigError(
            f"the soft targets' tags are not the student's: the teacher lacks {missing} and has {extra} "
            "(teacher and student must predict the same entity labels)"
        )
    index = {tag: i for i, tag in enumerate(teacher_tags)}
    return numpy.array([index[tag] for tag in student_tags], dtype="i")


def project_targets(
    token_targets: numpy.ndarray, pairs: TokenRows, method: str, n_rows: int, window_length: int
) -> numpy.ndarray:
    """Per-row target log-probabilities from per-token ones, projected exactly as gold tags are
    (`label_projection` `method`); NaN rows carry no target.

    RETURNS (numpy.ndarray): (n_rows, n_tags).
    """
    has_target = ~numpy.isnan(token_targets).any(axis=1)
    token_ids = numpy.where(has_target, numpy.arange(len(token_targets)), -1).astype("i")
    row_token = project_gold(token_ids, pairs, method, n_rows, window_length)
    out = numpy.full((n_rows, token_targets.shape[1]), numpy.nan, dtype="f")
    rows = numpy.flatnonzero(row_token >= 0)
    out[rows] = token_targets[row_token[rows]]
    return out


def distillation_loss(
    scores: numpy.ndarray, row_gold: numpy.ndarray, row_targets: numpy.ndarray, alpha: float, temperature: float
) -> Tuple[float, numpy.ndarray]:
    """`α · T² · KL(q_T ‖ p_T) + (1 − α) · CE(gold)` per row, averaged over the rows with any signal.

    q_T is the teacher's distribution at temperature T (its log-probabilities divided by T, renormalised),
    p_T the student's. A row with a target but no gold learns from the teacher alone (weight 1, not α); a
    row with gold but no target from the gold alone. T² keeps the soft term's gradient on the scale of
    the hard one's (Hinton et al., 2015).

    scores (numpy.ndarray): (n_rows, n_tags) the student's scores.
    row_gold (numpy.ndarray): (n_rows,) gold tag ids, -1 for none.
    row_targets (numpy.ndarray): (n_rows, n_tags) the teacher's log-probabilities, NaN rows for none.
    RETURNS (Tuple[float, numpy.ndarray]): the loss and its gradient with respect to `scores`.
    """
    if not (0.0 <= alpha <= 1.0):
        raise ConfigError(f"distill_alpha must be in [0, 1], got {alpha!r}")
    if not temperature > 0:
        raise ConfigError(f"distill_temperature must be above 0, got {temperature!r}")
    scores = numpy.asarray(scores, dtype="f8")
    has_gold = row_gold >= 0
    has_target = ~numpy.isnan(row_targets).any(axis=1)
    soft_weight = numpy.where(has_gold, alpha, 1.0) * has_target
    hard_weight = numpy.where(has_target, 1.0 - alpha, 1.0) * has_gold
    n_rows = int((has_gold | has_target).sum())
    d_scores = numpy.zeros_like(scores)
    if n_rows == 0:
        return 0.0, d_scores.astype("f")
    loss = 0.0
    rows = numpy.flatnonzero(has_gold)
    if len(rows):
        probs = softmax(scores[rows])
        gold = row_gold[rows]
        ce = -numpy.log(numpy.maximum(probs[numpy.arange(len(rows)), gold], 1e-300))
        loss += float((hard_weight[rows] * ce).sum())
        grad = probs
        grad[numpy.arange(len(rows)), gold] -= 1.0
        d_scores[rows] += hard_weight[rows, None] * grad
    rows = numpy.flatnonzero(has_target)
    if len(rows):
        teacher = softmax(numpy.asarray(row_targets[rows], dtype="f8") / temperature)
        scaled = scores[rows] / temperature
        log_student = scaled - logsumexp(scaled, axis=1)[:, None]
        log_teacher = numpy.log(numpy.maximum(teacher, 1e-300))
        kl = (teacher * (log_teacher - log_student)).sum(axis=1)
        loss += float((soft_weight[rows] * temperature**2 * kl).sum())
        # d/dz of T² · KL(q ‖ softmax(z / T)) = T · (p_T − q)
        d_scores[rows] += (soft_weight[rows] * temperature)[:, None] * (numpy.exp(log_student) - teacher)
    return loss / n_rows, (d_scores / n_rows).astype("f")
