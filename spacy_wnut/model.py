"""The Thinc model: a Hugging Face encoder with a token-classification head on every subword.

The encoder is spacy-transformers' `TransformerModel` (HF loading, fast
tokenisation with character offsets, strided windows, weights serialised
inside the pipeline). The head is dropout + a linear layer shaped like
`AutoModelForTokenClassification`'s `classifier` (`W: (n_tags, width)`, `b: (n_tags,)`).
"""
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch
from spacy_transformers.span_getters import get_strided_spans
from spacy_transformers.util import registry
from thinc.api import Dropout, Linear, Model, torch2xp, xp2torch
from thinc.types import Floats2d, Ragged
from transformers.file_utils import ModelOutput


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
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """A HF encoder + dropout + linear head scoring every subword.

    transformer: e.g. `spacy-transformers.TransformerModel.v3`.
    dropout: before the head, as in HF's token-classification models.
    freeze_embeddings: keep the encoder's input (word piece) embeddings fixed
        during training; they are half of a small encoder's weights.
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
        attrs={"freeze_embeddings": freeze_embeddings},
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
    lengths = numpy.array([len(doc) for doc in docs], dtype="i")
    if batch.align.lengths.shape[0] != lengths.sum():
        raise ValueError(
            "the span getter must give every doc with tokens at least one span; "
            f"aligned {batch.align.lengths.shape[0]} of {lengths.sum()} tokens"
        )
    output = SubwordScores(scores, batch.align, lengths, window_length, batch)

    def backprop(d_scores: Floats2d) -> List[Doc]:
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
