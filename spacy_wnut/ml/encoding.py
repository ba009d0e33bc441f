"""The one way from docs to the encoder's input, for training, every engine and the run-time pipeline.

Windows of spaCy tokens (the model's `get_spans`), tokenisation
(`SubwordTokenizer`, a fast tokenizer), windows cut down until they
fit the encoder, padding, and the token-row alignment (`alignment.align_offsets`).
Nothing here imports torch or transformers at module level.
"""

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc, Span
from thinc.api import Model
from thinc.types import Ragged

from ..errors import ConfigError
from .alignment import align_offsets
from .tokenization import NO_LIMIT, SubwordTokenizer

if TYPE_CHECKING:
    import torch

# Model types whose position ids start after the padding index, so that
# `max_position_embeddings` counts two positions no input can use.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart", "xlm-roberta-xl", "mpnet"}
SpanGetter = Callable[[List[Doc]], List[List[Span]]]


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

    @property
    def window_length(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.input_ids.shape[0] * self.input_ids.shape[1])

    def torch_inputs(self, device=None) -> Dict[str, "torch.Tensor"]:
        """The encoder's keyword arguments as tensors (training and the torch engines only)."""
        import torch

        inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            inputs["token_type_ids"] = self.token_type_ids
        return {name: torch.from_numpy(value).to(device) for name, value in inputs.items()}


def doc_lengths(docs: List[Doc]) -> numpy.ndarray:
    """Tokens per doc."""
    return numpy.array([len(doc) for doc in docs], dtype="i")


def max_subwords_of(tokenizer: Any, config: Any) -> int:
    """The most subwords (special tokens included) one window may hold for a HF tokenizer and encoder config.

    The tokenizer's `model_max_length` where it is set, else what the encoder's
    position embeddings allow; imported checkpoints often lack the former.
    """
    limits = []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer_limit and tokenizer_limit < NO_LIMIT:
        limits.append(int(tokenizer_limit))
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = 2 if getattr(config, "model_type", "") in _OFFSET_POSITIONS else 0
        limits.append(int(positions) - offset)
    return min(limits) if limits else 512


def model_encoding(model: Model) -> Tuple[Optional[SubwordTokenizer], SpanGetter]:
    """The tokenizer and span getter of a tagger model (None before its tokenizer is loaded).

    A `SubwordTagger` reads them from its encoder layer (`HFEncoder`); a
    run-time `OnnxTagger` holds them itself.
    """
    if model.has_ref("transformer"):
        transformer = model.get_ref("transformer")
        return transformer.layers[0].shims[0].subwords, transformer.attrs["get_spans"]
    return model.attrs["onnx_encoder"].tokenizer, model.attrs["get_spans"]


def _fit_windows(
    tokenizer: SubwordTokenizer, windows: List[Tuple[int, Span]]
) -> Tuple[List[Tuple[int, Span]], Dict[str, List], int]:
    """Tokenize windows, cutting any that holds more than the limit into pieces that fit.

    A window is cut at token boundaries, packing as many whole tokens into each
    piece as fit (`_pack`). A single token longer than the limit is truncated
    (its extra subwords are counted in the third value returned). Windows are
    `(doc index, span)`.
    """
    limit = tokenizer.max_length
    while True:
        encoded = tokenizer.encode([span.text for _, span in windows])
        lengths = [len(ids) for ids in encoded["input_ids"]]
        if all(n <= limit or len(span) == 1 for n, (_, span) in zip(lengths, windows)):
            break
        cut: List[Tuple[int, Span]] = []
        for n, (doc_index, span) in zip(lengths, windows):
            pieces = [span] if n <= limit or len(span) == 1 else _pack(tokenizer, span)
            cut += [(doc_index, piece) for piece in pieces]
        windows = cut
    oversized = [i for i, n in enumerate(lengths) if n > limit]
    if not oversized:
        return windows, encoded, 0
    truncated = tokenizer.encode([windows[i][1].text for i in oversized], max_length=limit)
    for key in encoded:
        for i, value in zip(oversized, truncated[key]):
            encoded[key][i] = value
    return windows, encoded, sum(lengths[i] - limit for i in oversized)


def _pack(tokenizer: SubwordTokenizer, span: Span) -> List[Span]:
    """Cut `span` into consecutive pieces of whole tokens whose subwords fit the limit (greedy).

    Subwords are counted per token; where that underestimates a piece (BPE
    merges across tokens) and nothing would change, the span is halved instead.
    """
    budget = max(1, tokenizer.max_length - tokenizer.num_special_tokens())
    counts = tokenizer.count([t.text for t in span])
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


def encode_docs(tokenizer: SubwordTokenizer, get_spans: SpanGetter, docs: List[Doc]) -> EncodedBatch:
    """Docs -> windows -> subwords -> padded encoder input, with the token-row alignment.

    Windows come from `get_spans`; any window whose subwords do not fit the
    encoder is cut into pieces that do, so every token is scored (a lone token
    longer than the limit keeps its first subwords; such cuts are counted in
    `cut_subwords` and warned about).

    tokenizer (SubwordTokenizer): the encoder's tokenizer.
    get_spans (Callable): docs -> the windows of each doc.
    docs (List[Doc]): the batch.
    RETURNS (EncodedBatch): what every engine and the training forward take.
    """
    nested = get_spans(docs)
    lengths = doc_lengths(docs)
    unread = [i for i, doc_spans in enumerate(nested) if lengths[i] and not doc_spans]
    if unread:
        raise ConfigError(
            f"the span getter must give every doc with tokens at least one span; doc {unread[0]} has none"
        )
    windows = [(i, span) for i, doc_spans in enumerate(nested) for span in doc_spans]
    windows, encoded, cut = _fit_windows(tokenizer, windows)
    if cut:
        warnings.warn(
            f"[spacy_wnut] {cut} subword(s) dropped: a single token is longer than the encoder's "
            f"limit of {tokenizer.max_length} subwords",
            stacklevel=2,
        )
    ids = encoded["input_ids"]
    width = max((len(row) for row in ids), default=0)
    input_ids = _padded(ids, width, tokenizer.pad_id, "int64")
    attention_mask = _padded([[1] * len(row) for row in ids], width, 0, "int64")
    token_type_ids = numpy.zeros_like(input_ids) if tokenizer.token_type_ids else None
    offsets = _padded(encoded["offset_mapping"], width, (0, 0), "int64")
    align = align_offsets(windows, offsets, lengths)
    regrouped: List[List[Span]] = [[] for _ in docs]
    for doc_index, span in windows:
        regrouped[doc_index].append(span)
    if align.lengths.shape[0] != lengths.sum():
        raise ConfigError(
            "the span getter must give every doc with tokens at least one span; "
            f"aligned {align.lengths.shape[0]} of {lengths.sum()} tokens"
        )
    return EncodedBatch(input_ids, attention_mask, token_type_ids, align, lengths, regrouped, cut)


def encode_for(model: Model, docs: List[Doc]) -> EncodedBatch:
    """`encode_docs` with a tagger model's own tokenizer and windows (`model_encoding`)."""
    tokenizer, get_spans = model_encoding(model)
    return encode_docs(tokenizer, get_spans, docs)
