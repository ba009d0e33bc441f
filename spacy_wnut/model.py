"""The Thinc model: a Hugging Face encoder with a token-classification head on every subword.

The encoder is spacy-transformers' `TransformerModel` (HF loading, the
tokenizer, weights serialised inside the pipeline). The way from docs to the
encoder's input is written once, here, and used by training, by every
inference engine and by HF export: windows of spaCy tokens, tokenisation
(fast or slow tokenizers), subword-token alignment, and windows cut down
until they fit the encoder (`encode_docs`). The way from the encoder's output
to subword tag scores is written once too (`scores_from_hidden`,
`scores_from_logits`): the head, shaped like
`AutoModelForTokenClassification`'s `classifier` (`W: (n_tags, width)`,
`b: (n_tags,)`), plus the optional casing and token features.
"""

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy_transformers.align import get_alignment, get_alignment_via_offset_mapping
from spacy_transformers.data_classes import FullTransformerBatch, WordpieceBatch
from spacy_transformers.span_getters import get_strided_spans
from spacy_transformers.util import registry
from thinc.api import Dropout, Linear, Model, PyTorchShim, torch2xp, xp2torch
from thinc.types import Floats2d, Ragged
from transformers.utils import ModelOutput

from .backbones import resolve_backbone
from .features import CASING_SCALE, N_CASINGS, TokenRowMap, row_casings

if TYPE_CHECKING:
    import torch

# Model types whose position ids start after the padding index, so that
# `max_position_embeddings` counts two positions no input can use.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart", "xlm-roberta-xl"}
_NO_LIMIT = 1_000_000


@dataclass
class EncodedBatch:
    """A batch of docs as the encoder takes it: padded subword windows, and how tokens map onto rows.

    input_ids, attention_mask, token_type_ids: (n_windows, window_length) int64.
    align: token i of the batch (docs concatenated) -> its rows of the flattened windows.
    spans: the windows of each doc (spaCy spans), after any cut.
    cut_subwords: subwords dropped because a single token alone was longer than the encoder's limit.
    """

    input_ids: numpy.ndarray
    attention_mask: numpy.ndarray
    token_type_ids: Optional[numpy.ndarray]
    align: Ragged
    doc_lengths: numpy.ndarray
    spans: List[List[Span]]
    cut_subwords: int = 0
    strings: Optional[List[List[str]]] = None

    @property
    def window_length(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.input_ids.shape[0] * self.input_ids.shape[1])

    def wordpieces(self, tokenizer=None) -> WordpieceBatch:
        """As spacy-transformers' `WordpieceBatch` (subword strings only when a tokenizer is given)."""
        if self.strings is None and tokenizer is not None:
            self.strings = [tokenizer.convert_ids_to_tokens(row) for row in self.input_ids.tolist()]
        strings = self.strings if self.strings is not None else [[] for _ in range(len(self.input_ids))]
        return WordpieceBatch(
            strings=strings,
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            lengths=self.attention_mask.sum(axis=1).tolist(),
            token_type_ids=self.token_type_ids,
        )

    def torch_inputs(self, device=None) -> Dict[str, "torch.Tensor"]:
        """The encoder's keyword arguments as tensors."""
        import torch

        inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            inputs["token_type_ids"] = self.token_type_ids
        return {name: torch.from_numpy(value).to(device) for name, value in inputs.items()}


@dataclass
class SubwordScores:
    """Tag scores for every subword row of a batch and how spaCy tokens map onto the rows.

    scores: (n_windows * window_length, n_tags) logits, padding rows included.
    align: token i of the batch (docs concatenated) -> its rows.
    doc_lengths: tokens per doc.
    window_length: rows per window (the padded subword length).
    trf_batch: the encoder's output, kept only as long as this object lives.
    cut_subwords: subwords dropped because one token alone exceeded the encoder's limit.
    """

    scores: Floats2d
    align: Ragged
    doc_lengths: numpy.ndarray
    window_length: int
    trf_batch: Optional[FullTransformerBatch] = None
    cut_subwords: int = 0

    @classmethod
    def empty(cls, docs: List[Doc], n_tags: int) -> "SubwordScores":
        align = Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((sum(len(d) for d in docs),), dtype="i"))
        return cls(numpy.zeros((0, n_tags), dtype="f"), align, doc_lengths(docs), 1)


def doc_lengths(docs: List[Doc]) -> numpy.ndarray:
    """Tokens per doc."""
    return numpy.array([len(doc) for doc in docs], dtype="i")


@registry.span_getters("spacy_wnut.strided_spans.v1")
def configure_strided_spans(window: int, stride: int) -> Callable:
    """Overlapping windows of `window` tokens every `stride` tokens (validated).

    A window whose subwords do not fit the encoder is cut in halves until
    they do (`encode_docs`), so `window` is an upper bound.
    """
    if window < 1 or not (window // 2 <= stride <= window):
        raise ValueError(
            f"strided_spans: need window >= 1 and window // 2 <= stride <= window, got window={window}, stride={stride}"
        )
    return partial(get_strided_spans, window=window, stride=stride)


def max_subwords(transformer: Model) -> int:
    """The most subwords (special tokens included) one window may hold for this encoder.

    The tokenizer's `model_max_length` where it is set, else what the encoder's
    position embeddings allow; imported checkpoints often lack the former.
    """
    limits = []
    tokenizer_limit = getattr(transformer.tokenizer, "model_max_length", None)
    if tokenizer_limit and tokenizer_limit < _NO_LIMIT:
        limits.append(int(tokenizer_limit))
    config = getattr(transformer.transformer, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = 2 if getattr(config, "model_type", "") in _OFFSET_POSITIONS else 0
        limits.append(int(positions) - offset)
    return min(limits) if limits else 512


def _tokenize(
    tokenizer, texts: List[str], max_length: Optional[int] = None, add_special_tokens: bool = True
) -> Dict[str, List]:
    """Subword ids (and character offsets, from fast tokenizers) of each text, unpadded.

    Fast tokenizers are called through their Rust backend, as the tokenizer's
    own `__call__` does, without building a `BatchEncoding` per call (which
    costs as much as the tokenisation itself for one short text).
    """
    if tokenizer.is_fast:
        backend = tokenizer.backend_tokenizer
        backend.no_padding()
        if max_length is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(max_length, direction=tokenizer.truncation_side)
        encodings = backend.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}
    return tokenizer(
        texts,
        add_special_tokens=add_special_tokens,
        return_attention_mask=False,
        return_token_type_ids=False,
        truncation=max_length is not None,
        max_length=max_length,
        verbose=False,
    )


def count_subwords(tokenizer, texts: List[str], special_tokens: bool = False) -> List[int]:
    """Subwords per text by the transformer's tokenizer (for batching and length sorting)."""
    return [len(ids) for ids in _tokenize(tokenizer, texts, add_special_tokens=special_tokens)["input_ids"]]


def _fit_windows(
    tokenizer, windows: List[Tuple[int, Span]], limit: int
) -> Tuple[List[Tuple[int, Span]], Dict[str, List], int]:
    """Tokenize windows, cutting any that holds more than `limit` subwords into pieces that fit.

    A window is cut at token boundaries, packing as many whole tokens into each
    piece as fit (`_pack`). A single token longer than `limit` is truncated
    (its extra subwords are counted in the third value returned). Windows are
    `(doc index, span)`.
    """
    while True:
        encoded = _tokenize(tokenizer, [span.text for _, span in windows])
        lengths = [len(ids) for ids in encoded["input_ids"]]
        if all(n <= limit or len(span) == 1 for n, (_, span) in zip(lengths, windows)):
            break
        cut: List[Tuple[int, Span]] = []
        for n, (doc_index, span) in zip(lengths, windows):
            pieces = [span] if n <= limit or len(span) == 1 else _pack(tokenizer, span, limit)
            cut += [(doc_index, piece) for piece in pieces]
        windows = cut
    oversized = [i for i, n in enumerate(lengths) if n > limit]
    if not oversized:
        return windows, encoded, 0
    truncated = _tokenize(tokenizer, [windows[i][1].text for i in oversized], max_length=limit)
    for key in encoded:
        for i, value in zip(oversized, truncated[key]):
            encoded[key][i] = value
    return windows, encoded, sum(lengths[i] - limit for i in oversized)


def _pack(tokenizer, span: Span, limit: int) -> List[Span]:
    """Cut `span` into consecutive pieces of whole tokens whose subwords fit `limit` (greedy).

    Subwords are counted per token; where that underestimates a piece (BPE
    merges across tokens) and nothing would change, the span is halved instead.
    """
    budget = max(1, limit - tokenizer.num_special_tokens_to_add(pair=False))
    counts = [
        len(ids) for ids in tokenizer([t.text for t in span], add_special_tokens=False, verbose=False)["input_ids"]
    ]
    pieces: List[Span] = []
    start, used = 0, 0
    for i, count in enumerate(counts):
        if i > start and used + count > budget:
            pieces.append(span[start:i])
            start, used = i, 0
        used += count
    pieces.append(span[start:])
    if len(pieces) == 1:
        middle = len(span) // 2
        return [span[:middle], span[middle:]]
    return pieces


def _padded(rows: List[List], width: int, fill, dtype: str) -> numpy.ndarray:
    out = numpy.full((len(rows), width) + numpy.shape(fill), fill, dtype=dtype)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = row
    return out


def encode_docs(transformer: Model, docs: List[Doc]) -> EncodedBatch:
    """Docs -> windows -> subwords -> padded encoder input, with the token-row alignment.

    Windows come from the transformer's `get_spans`; any window whose subwords
    do not fit the encoder is cut into pieces that do, so every token is
    scored (a lone token longer than the limit keeps its first subwords; such
    cuts are counted in `cut_subwords` and warned about).

    transformer (Model): spacy-transformers' `TransformerModel`, initialized.
    docs (List[Doc]): the batch.
    RETURNS (EncodedBatch): what every engine and the training forward take.
    """
    tokenizer = transformer.tokenizer
    nested = transformer.attrs["get_spans"](docs)
    windows = [(i, span) for i, doc_spans in enumerate(nested) for span in doc_spans]
    windows, encoded, cut = _fit_windows(tokenizer, windows, max_subwords(transformer))
    if cut:
        warnings.warn(
            f"[spacy_wnut] {cut} subword(s) dropped: a single token is longer than the encoder's "
            f"limit of {max_subwords(transformer)} subwords",
            stacklevel=2,
        )
    spans = [span for _, span in windows]
    ids = encoded["input_ids"]
    width = max((len(row) for row in ids), default=0)
    input_ids = _padded(ids, width, tokenizer.pad_token_id or 0, "int64")
    attention_mask = _padded([[1] * len(row) for row in ids], width, 0, "int64")
    token_type_ids = None
    if "token_type_ids" in tokenizer.model_input_names:
        token_type_ids = numpy.zeros_like(input_ids)
    strings = None
    if "offset_mapping" in encoded:
        offsets = _padded(encoded["offset_mapping"], width, (0, 0), "int64")
        align = get_alignment_via_offset_mapping(spans, offsets)
    else:
        strings = [tokenizer.convert_ids_to_tokens(row) for row in input_ids.tolist()]
        align = get_alignment(spans, strings, tokenizer.all_special_tokens)
    regrouped: List[List[Span]] = [[] for _ in docs]
    for doc_index, span in windows:
        regrouped[doc_index].append(span)
    lengths = doc_lengths(docs)
    if align.lengths.shape[0] != lengths.sum():
        raise ValueError(
            "the span getter must give every doc with tokens at least one span; "
            f"aligned {align.lengths.shape[0]} of {lengths.sum()} tokens"
        )
    return EncodedBatch(input_ids, attention_mask, token_type_ids, align, lengths, regrouped, cut, strings)


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
    return build_subword_tagger_v2(transformer, dropout, freeze_embeddings, casing_features, None, nO)


@registry.architectures("spacy_wnut.SubwordTagger.v2")
def build_subword_tagger_v2(
    transformer: Model[List[Doc], FullTransformerBatch],
    dropout: float = 0.1,
    freeze_embeddings: bool = False,
    casing_features: bool = False,
    token_features: Optional[Model[List[Doc], List[Floats2d]]] = None,
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """`SubwordTagger.v1` plus optional token features beside the encoder.

    token_features: a spaCy-style tok2vec (e.g. `spacy_wnut.TokenFeatures.v1`)
        whose vector for each spaCy token is joined to the encoder's row of
        every subword of that token, before dropout and the head. It sees what
        an uncased encoder cannot (shape, casing, affixes). A checkpoint
        exported to HF cannot hold it.
    """
    head = Linear(nO=nO)
    layers = [transformer, Dropout(dropout), head]
    refs = {"transformer": transformer, "output_layer": head}
    if token_features is not None:
        layers.append(token_features)
        refs["token_features"] = token_features
    return Model(
        "subword_tagger",
        forward,
        init=init,
        layers=layers,
        refs=refs,
        dims={"nO": nO},
        params={"casing_W": None} if casing_features else {},
        attrs={"freeze_embeddings": freeze_embeddings, "casing_features": casing_features},
    )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    transformer = model.get_ref("transformer")
    head = model.get_ref("output_layer")
    if not transformer.attrs["has_transformer"]:
        transformer.attrs["name"] = resolve_backbone(transformer.attrs["name"])
    transformer.initialize(X=X)
    apply_frozen_embeddings(model)
    width = transformer.get_dim("nO")
    if model.has_ref("token_features"):
        features = model.get_ref("token_features")
        features.initialize(X=X)
        width += features.get_dim("nO")
    head.set_dim("nI", width, force=True)
    if model.has_dim("nO"):
        head.set_dim("nO", model.get_dim("nO"), force=True)
    head.initialize()
    if model.attrs["casing_features"]:
        model.set_param("casing_W", model.ops.alloc2f(N_CASINGS, head.get_dim("nO")))


def apply_frozen_embeddings(model: Model) -> None:
    """Keep the encoder's input embeddings out of training if the model says so (after init or loading)."""
    encoder = model.get_ref("transformer").transformer
    if model.attrs["freeze_embeddings"] and encoder is not None:
        # The shim only updates parameters that received a gradient.
        encoder.get_input_embeddings().weight.requires_grad_(False)


def encoder_width(model: Model) -> int:
    """Width of the encoder's rows (the head's input without token features)."""
    return model.get_ref("transformer").get_dim("nO")


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
    linear = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W))
        linear.bias.copy_(torch.from_numpy(b))
    return linear


def _trf_batch(encoded: EncodedBatch, tokenizer, model_output) -> FullTransformerBatch:
    return FullTransformerBatch(
        spans=encoded.spans, wordpieces=encoded.wordpieces(tokenizer), model_output=model_output, align=encoded.align
    )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[SubwordScores, Callable[[Floats2d], List[Doc]]]:
    transformer = model.get_ref("transformer")
    if not any(len(doc) for doc in docs):
        return SubwordScores.empty(docs, model.get_dim("nO")), lambda d_scores: docs
    encoded = encode_docs(transformer, docs)
    encoder = transformer.layers[0]  # spacy-transformers' HFWrapper: PyTorch via Thinc
    model_output, backprop_encoder = encoder(encoded.wordpieces(), is_train)
    hidden = model_output.last_hidden_state
    n_windows, window_length, width = hidden.shape
    scores, backprop_scores = scores_from_hidden(model, docs, encoded, torch2xp(hidden).reshape(-1, width), is_train)
    output = SubwordScores(
        scores,
        encoded.align,
        encoded.doc_lengths,
        window_length,
        _trf_batch(encoded, transformer.tokenizer, model_output),
        encoded.cut_subwords,
    )

    def backprop(d_scores: Floats2d) -> List[Doc]:
        d_hidden = backprop_scores(d_scores)
        backprop_encoder(ModelOutput(last_hidden_state=xp2torch(d_hidden.reshape(n_windows, window_length, width))))
        return docs

    return output, backprop


def finish_update(model: Model, sgd) -> None:
    """`Model.finish_update`, with the token features' learning rate scaled by their `learn_rate_scale`."""
    scales: Dict[int, float] = {}
    if model.has_ref("token_features"):
        features = model.get_ref("token_features")
        scales = {node.id: features.attrs.get("learn_rate_scale", 1.0) for node in features.walk()}
    for node in model.walk():
        for shim in node.shims:
            shim.finish_update(sgd)
    for node in model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                param, _ = sgd(
                    (node.id, name), node.get_param(name), node.get_grad(name), lr_scale=scales.get(node.id, 1.0)
                )
                node.set_param(name, param)


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
