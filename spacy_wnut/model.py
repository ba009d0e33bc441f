"""The Thinc model: a Hugging Face encoder with a token-classification head on every subword.

The encoder is spacy-transformers' `TransformerModel` (HF loading, fast
tokenisation with character offsets, strided windows, weights serialised
inside the pipeline). The head is dropout + a linear layer shaped like
`AutoModelForTokenClassification`'s `classifier` (`W: (n_tags, width)`, `b: (n_tags,)`).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch
from spacy_transformers.span_getters import get_strided_spans
from spacy_transformers.util import registry
from thinc.api import Dropout, Linear, Model, PyTorchShim, torch2xp, xp2torch
from thinc.types import Floats2d, Ragged
from transformers.file_utils import ModelOutput

if TYPE_CHECKING:
    import torch


@dataclass
class SubwordScores:
    """Tag scores for every subword row of a batch and how spaCy tokens map onto the rows.

    scores: (n_windows * window_length, n_tags) logits, padding rows included.
    align: token i of the batch (docs concatenated) -> its rows.
    doc_lengths: tokens per doc.
    window_length: rows per window (the padded wordpiece length).
    trf_batch: the encoder's output, kept only as long as this object lives.
    """

    scores: Floats2d
    align: Ragged
    doc_lengths: numpy.ndarray
    window_length: int
    trf_batch: Optional[FullTransformerBatch] = None

    @classmethod
    def empty(cls, docs: List[Doc], n_tags: int) -> "SubwordScores":
        align = Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((sum(len(d) for d in docs),), dtype="i"))
        lengths = numpy.array([len(doc) for doc in docs], dtype="i")
        return cls(numpy.zeros((0, n_tags), dtype="f"), align, lengths, 1)


# Casing classes of a token: 0 for rows of no token (special tokens, padding).
CASING_ATTRS = ["IS_TITLE", "IS_UPPER", "IS_LOWER"]
N_CASINGS = 5  # none, Title, UPPER, lower, other
# The optimizer's learning rate suits the encoder's weights; scaling these few
# biases lets Adam (whose steps do not depend on the gradient's scale) move
# them by whole logits within one fine-tuning run.
CASING_SCALE = 20.0


def token_casings(docs: List[Doc]) -> numpy.ndarray:
    """Casing class per token of the docs (concatenated): 1 Title, 2 UPPER, 3 lower, 4 other."""
    flags = [doc.to_array(CASING_ATTRS).reshape(-1, 3) for doc in docs if len(doc)]
    if not flags:
        return numpy.zeros((0,), dtype="i")
    flags = numpy.concatenate(flags).astype(bool)
    # The first flag that holds wins ("I" is both Title and UPPER: Title).
    return numpy.where(flags.any(axis=1), flags.argmax(axis=1) + 1, 4).astype("i")


def row_casings(docs: List[Doc], align: Ragged, n_rows: int) -> numpy.ndarray:
    """Casing class of the token each subword row belongs to (0 for rows of no token)."""
    lengths = numpy.asarray(align.lengths)
    token_of_entry = numpy.repeat(numpy.arange(len(lengths)), lengths)
    rows = numpy.zeros((n_rows,), dtype="i")
    rows[numpy.asarray(align.dataXd).ravel()] = token_casings(docs)[token_of_entry]
    return rows


@registry.span_getters("spacy_wnut.strided_spans.v1")
def configure_strided_spans(window: int, stride: int) -> Callable:
    """Overlapping windows of `window` tokens every `stride` tokens (validated)."""
    if window < 1 or not (window // 2 <= stride <= window):
        raise ValueError(
            f"strided_spans: need window >= 1 and window // 2 <= stride <= window, "
            f"got window={window}, stride={stride}"
        )
    return partial(get_strided_spans, window=window, stride=stride)


@registry.architectures("spacy_wnut.SubwordTagger.v1")
def build_subword_tagger(
    transformer: Model[List[Doc], FullTransformerBatch],
    dropout: float = 0.1,
    freeze_embeddings: bool = False,
    casing_features: bool = False,
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """A HF encoder + dropout + linear head scoring every subword.

    transformer: e.g. `spacy-transformers.TransformerModel.v3`.
    dropout: before the head, as in HF's token-classification models.
    freeze_embeddings: keep the encoder's input (word piece) embeddings fixed
        during training; they are half of a small encoder's weights.
    casing_features: add a learned per-tag bias for the casing of the spaCy
        token each subword belongs to (lower, Title, UPPER, other). Uncased
        encoders lose this signal; a checkpoint exported to HF cannot hold it.
    nO: number of tags; set by the component at `initialize`.
    """
    head = Linear(nO=nO)
    return Model(
        "subword_tagger",
        forward,
        init=init,
        layers=[transformer, Dropout(dropout), head],
        refs={"transformer": transformer, "output_layer": head},
        dims={"nO": nO},
        params={"casing_W": None} if casing_features else {},
        attrs={"freeze_embeddings": freeze_embeddings, "casing_features": casing_features},
    )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    transformer = model.get_ref("transformer")
    head = model.get_ref("output_layer")
    transformer.initialize(X=X)
    if model.attrs["freeze_embeddings"]:
        # The shim only updates parameters that received a gradient.
        transformer.transformer.get_input_embeddings().weight.requires_grad_(False)
    head.set_dim("nI", transformer.get_dim("nO"), force=True)
    if model.has_dim("nO"):
        head.set_dim("nO", model.get_dim("nO"), force=True)
    head.initialize()
    if model.attrs["casing_features"]:
        model.set_param("casing_W", model.ops.alloc2f(N_CASINGS, head.get_dim("nO")))


@contextmanager
def swapped_params(model: Model, params: Dict) -> Iterator[int]:
    """Put `params` (e.g. `optimizer.averages`) into every layer, transformer included.

    Yields how many weight arrays were swapped; the old weights come back on exit,
    also when the caller's block raises or its generator is closed. Thinc's
    optimizer keys a PyTorch weight's average by `(shim.id, name)`, a key that
    `Model.use_params` does not pass on to the shim, so averages of the encoder's
    weights would otherwise never be used.
    """
    restore: List[Callable[[], None]] = []
    try:
        for node in model.walk():
            for name in node.param_names:
                value = params.get((node.id, name))
                if value is not None and node.has_param(name):
                    restore.append(partial(node.set_param, name, node.get_param(name)))
                    node.set_param(name, value)
            for shim in node.shims:
                if not isinstance(shim, PyTorchShim):
                    continue
                for name, weight in shim._model.named_parameters():
                    value = params.get((shim.id, name))
                    if value is not None:
                        old = weight.detach().clone()
                        restore.append(partial(_copy_into, weight, old))
                        _copy_into(weight, xp2torch(value, device=weight.device))
        yield len(restore)
    finally:
        for undo in reversed(restore):
            undo()


def _copy_into(weight: "torch.Tensor", value: "torch.Tensor") -> None:
    """Overwrite a PyTorch weight in place, outside autograd."""
    import torch

    with torch.no_grad():
        weight.copy_(value)


def check_alignment(docs: List[Doc], align: Ragged) -> numpy.ndarray:
    """Tokens per doc, after checking that the alignment covers every token of the batch."""
    lengths = numpy.array([len(doc) for doc in docs], dtype="i")
    if align.lengths.shape[0] != lengths.sum():
        raise ValueError(
            "the span getter must give every doc with tokens at least one span; "
            f"aligned {align.lengths.shape[0]} of {lengths.sum()} tokens"
        )
    return lengths


def add_casing_bias(
    model: Model, docs: List[Doc], align: Ragged, scores: Floats2d
) -> Tuple[Floats2d, Optional[numpy.ndarray]]:
    """Scores plus the learned casing bias of each row's token (if the model has casing features).

    Also returns the rows' casing classes (None without casing features), for backprop.
    """
    if not model.attrs["casing_features"]:
        return scores, None
    casing_rows = row_casings(docs, align, scores.shape[0])
    return scores + CASING_SCALE * model.get_param("casing_W")[casing_rows], casing_rows


def forward(
    model: Model, docs: List[Doc], is_train: bool
) -> Tuple[SubwordScores, Callable[[Floats2d], List[Doc]]]:
    transformer, dropout, head = model.layers
    if not any(len(doc) for doc in docs):
        return SubwordScores.empty(docs, model.get_dim("nO")), lambda d_scores: docs
    batch, backprop_transformer = transformer(docs, is_train)
    hidden = batch.model_output.last_hidden_state
    n_windows, window_length, width = hidden.shape
    X = torch2xp(hidden).reshape(-1, width)
    dropped, backprop_dropout = dropout(X, is_train)
    scores, backprop_head = head(dropped, is_train)
    lengths = check_alignment(docs, batch.align)
    scores, casing_rows = add_casing_bias(model, docs, batch.align, scores)
    output = SubwordScores(scores, batch.align, lengths, window_length, batch)

    def backprop(d_scores: Floats2d) -> List[Doc]:
        if casing_rows is not None:
            d_casing = model.ops.alloc2f(*model.get_param("casing_W").shape)
            numpy.add.at(d_casing, casing_rows, CASING_SCALE * d_scores)
            model.inc_grad("casing_W", d_casing)
        d_hidden = backprop_dropout(backprop_head(d_scores))
        d_output = ModelOutput(
            last_hidden_state=xp2torch(d_hidden.reshape(n_windows, window_length, width))
        )
        backprop_transformer(
            FullTransformerBatch(
                spans=batch.spans, wordpieces=batch.wordpieces, model_output=d_output, align=batch.align
            )
        )
        return docs

    return output, backprop
