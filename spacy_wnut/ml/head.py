"""From the encoder's rows to subword tag scores: the head, the casing bias and the token features.

Written once and used by training (`scores_from_hidden`, with its backprop),
by every inference engine and by the run-time pipeline (`scores_from_logits`,
after a graph that already holds the encoder and the head's encoder columns).
The head is shaped like `AutoModelForTokenClassification`'s `classifier`
(`W: (n_tags, width)`, `b: (n_tags,)`).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d, Ragged

from .encoding import EncodedBatch, doc_lengths
from .features import CASING_SCALE, TokenRowMap, row_casings

if TYPE_CHECKING:
    import torch


@dataclass
class SubwordScores:
    """Tag scores for every subword row of a batch and how spaCy tokens map onto the rows.

    scores: (n_windows * window_length, n_tags) logits, padding rows included.
    align: token i of the batch (docs concatenated) -> its rows.
    doc_lengths: tokens per doc.
    window_length: rows per window (the padded subword length).
    encoder_output: the encoded batch and the encoder's rows (training forward only), for `store_trf_data`.
    cut_subwords: subwords dropped because one token alone exceeded the encoder's limit.
    """

    scores: Floats2d
    align: Ragged
    doc_lengths: numpy.ndarray
    window_length: int
    encoder_output: Optional[Tuple[EncodedBatch, Floats2d]] = None
    cut_subwords: int = 0

    @classmethod
    def empty(cls, docs: List[Doc], n_tags: int) -> "SubwordScores":
        align = Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((sum(len(d) for d in docs),), dtype="i"))
        return cls(numpy.zeros((0, n_tags), dtype="f"), align, doc_lengths(docs), 1)


def encoder_width(model: Model) -> int:
    """Width of the encoder's rows (the head's input without token features)."""
    if model.has_ref("transformer"):
        return model.get_ref("transformer").get_dim("nO")
    return int(model.attrs["encoder_width"])


def has_spacy_features(model: Model) -> bool:
    """Whether the model uses spaCy-side features (casing, token features) a HF checkpoint cannot hold."""
    return bool(model.attrs["casing_features"]) or model.has_ref("token_features")


def _token_feature_rows(
    model: Model, docs: List[Doc], rows: TokenRowMap, is_train: bool
) -> Tuple[Optional[Floats2d], Callable[[Floats2d], None]]:
    """The token features of each subword row's token (zeros for rows of no token), and their backprop."""
    if not model.has_ref("token_features"):
        return None, lambda d_rows: None
    features = model.get_ref("token_features")
    per_doc, backprop = features(docs, is_train)
    nonempty = [f for f in per_doc if len(f)]
    tokens = model.ops.xp.concatenate(nonempty) if nonempty else model.ops.alloc2f(0, features.get_dim("nO"))

    def backprop_rows(d_rows: Floats2d) -> None:
        d_tokens = rows.to_tokens(model.ops, d_rows, len(tokens))
        splits = numpy.cumsum([len(f) for f in per_doc])[:-1]
        backprop(model.ops.xp.split(d_tokens, splits))

    return rows.from_tokens(model.ops, tokens), backprop_rows


def _casing_rows(model: Model, docs: List[Doc], rows: TokenRowMap) -> Optional[numpy.ndarray]:
    return row_casings(docs, rows) if model.attrs["casing_features"] else None


def scores_from_hidden(
    model: Model, docs: List[Doc], encoded: EncodedBatch, hidden: Floats2d, is_train: bool = False
) -> Tuple[Floats2d, Callable[[Floats2d], Floats2d]]:
    """Subword tag scores from the encoder's rows `(n_rows, width)`: dropout, head, features.

    Returns the scores and a backprop that takes their gradient, updates the
    head and the features, and returns the gradient of `hidden`.
    """
    _, dropout, head = model.layers[:3]
    rows = TokenRowMap.from_align(encoded.align, encoded.n_rows)
    features, backprop_features = _token_feature_rows(model, docs, rows, is_train)
    X = hidden if features is None else model.ops.xp.hstack([hidden, features])
    dropped, backprop_dropout = dropout(X, is_train)
    scores, backprop_head = head(dropped, is_train)
    casing = _casing_rows(model, docs, rows)
    if casing is not None:
        scores = scores + CASING_SCALE * model.get_param("casing_W")[casing]
    width = hidden.shape[1]

    def backprop(d_scores: Floats2d) -> Floats2d:
        if casing is not None:
            d_casing = model.ops.alloc2f(*model.get_param("casing_W").shape)
            numpy.add.at(d_casing, casing, CASING_SCALE * d_scores)
            model.inc_grad("casing_W", d_casing)
        d_X = backprop_dropout(backprop_head(d_scores))
        if features is not None:
            backprop_features(d_X[:, width:])
            d_X = model.ops.xp.ascontiguousarray(d_X[:, :width])
        return d_X

    return scores, backprop


def scores_from_logits(model: Model, docs: List[Doc], encoded: EncodedBatch, logits: Floats2d) -> Floats2d:
    """Subword tag scores from the encoder-and-head logits of an inference engine.

    The engine's graph holds the encoder and the head's encoder columns
    (`head_weights(model, encoder_only=True)`); the token features' columns
    and the casing bias, which need spaCy's tokens, are added here.
    """
    rows = TokenRowMap.from_align(encoded.align, encoded.n_rows)
    scores = logits
    features, _ = _token_feature_rows(model, docs, rows, is_train=False)
    if features is not None:
        W = model.get_ref("output_layer").get_param("W")
        scores = scores + features @ W[:, encoder_width(model) :].T
    casing = _casing_rows(model, docs, rows)
    if casing is not None:
        scores = scores + CASING_SCALE * model.get_param("casing_W")[casing]
    return scores


def head_weights(model: Model, encoder_only: bool = False) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The head's `W` and `b` as numpy arrays (only the encoder's columns of `W` if asked)."""
    head = model.get_ref("output_layer")
    W = model.ops.to_numpy(head.get_param("W"))
    if encoder_only:
        W = W[:, : encoder_width(model)]
    return numpy.ascontiguousarray(W), numpy.ascontiguousarray(model.ops.to_numpy(head.get_param("b")))


def head_as_torch_linear(model: Model) -> "torch.nn.Linear":
    """A copy of the head's encoder columns as `torch.nn.Linear`, like HF's `classifier`."""
    import torch

    W, b = head_weights(model, encoder_only=True)
    # skip_init: no random initialisation, so building an engine leaves torch's RNG (training's dropout) as it was
    linear = torch.nn.utils.skip_init(torch.nn.Linear, W.shape[1], W.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W))
        linear.bias.copy_(torch.from_numpy(b))
    return linear
