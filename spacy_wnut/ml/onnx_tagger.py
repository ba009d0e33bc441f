"""`spacy_wnut.OnnxTagger.v1`: the run-time tagger, with no torch, transformers or spacy-transformers.

It holds what prediction needs and nothing that training does: the encoder
and the head's encoder columns as one ONNX graph (fp32 or int8), the fast
tokenizer's JSON and its settings (`OnnxEncoder`, saved inside the model's
weights file), the head (whose token-feature columns and bias stay in
numpy), the casing bias and the token-feature layers. It reads docs through
the same `encoding.encode_docs` and scores them through the same
`head.scores_from_logits` as the pipeline it was exported from
(`spacy wnut export-runtime`), so both see the same subwords and windows.
"""

import os
import sys
import weakref
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
import srsly
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, deserialize_attr, serialize_attr
from thinc.types import Floats2d

from ..errors import ConfigError
from .chunking import DEFAULT_BATCH_SUBWORDS, run_in_chunks
from .encoding import EncodedBatch, encode_for
from .features import N_CASINGS
from .head import SubwordScores, scores_from_logits
from .tokenization import SubwordTokenizer
from .windows import check_windows, strided_spans

RUNTIME_HINT = (
    "a run-time pipeline (spacy_wnut.OnnxTagger.v1: an ONNX graph, no trainable encoder) cannot be trained: "
    "train the pipeline it was exported from (pip install 'spacy-wnut[train]'), then rebuild it with "
    "`spacy wnut export-runtime`"
)


class OnnxSession:
    """An ONNX Runtime session over a graph, opened on first use.

    A session alive when the process forks (`nlp.pipe(n_process=N)`) leaves
    its children hanging, so sessions are closed just before any fork and
    reopened lazily; a forked child opens its own with one thread, so N
    workers do not fight over the cores.
    """

    on_gpu = False  # the engine contract (`engine.Engine`); ONNX Runtime runs on the CPU here

    def __init__(self, onnx_bytes: bytes, n_threads: Optional[int]) -> None:
        self.onnx_bytes = onnx_bytes
        self.n_threads = n_threads
        self._session = None
        self._owner_pid = os.getpid()
        _OPEN_SESSIONS.add(self)

    def _session_here(self):
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads()
            self._session = onnxruntime.InferenceSession(self.onnx_bytes, options, providers=["CPUExecutionProvider"])
        return self._session

    def _threads(self) -> int:
        if os.getpid() != self._owner_pid:
            return 1
        if self.n_threads is not None:
            return self.n_threads
        torch = sys.modules.get("torch")  # beside a torch pipeline, share its thread setting
        return torch.get_num_threads() if torch is not None else 0  # 0: ONNX Runtime's default

    def close(self) -> None:
        """Close the session (it reopens on the next call)."""
        self._session = None

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        feed = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}
        logits = self._session_here().run(None, feed)[0]
        return logits.reshape(-1, logits.shape[-1])


_OPEN_SESSIONS: "weakref.WeakSet[OnnxSession]" = weakref.WeakSet()


def _close_sessions_before_fork() -> None:
    for session in list(_OPEN_SESSIONS):
        session.close()


os.register_at_fork(before=_close_sessions_before_fork)


class OnnxEncoder:
    """What a run-time tagger runs: the ONNX graph and the tokenizer, serialised with the model's weights.

    onnx_bytes (bytes): the graph (inputs `input_ids`, `attention_mask`; output `logits`).
    tokenizer_json (str): the fast tokenizer (`tokenizer.json`).
    settings (Dict[str, Any]): `SubwordTokenizer.settings()`.
    quantized (bool): whether the graph is int8.
    """

    def __init__(
        self,
        onnx_bytes: bytes = b"",
        tokenizer_json: str = "",
        settings: Optional[Dict[str, Any]] = None,
        quantized: bool = False,
    ) -> None:
        self.onnx_bytes = onnx_bytes
        self.tokenizer_json = tokenizer_json
        self.settings = dict(settings or {})
        self.quantized = quantized
        self.n_threads: Optional[int] = None
        self.batch_subwords: Optional[int] = DEFAULT_BATCH_SUBWORDS
        self._tokenizer: Optional[SubwordTokenizer] = None
        self._session: Optional[OnnxSession] = None

    @property
    def is_empty(self) -> bool:
        return not self.onnx_bytes

    @property
    def engine(self) -> str:
        """The engine name this graph is: "onnx" or "onnx-int8"."""
        return "onnx-int8" if self.quantized else "onnx"

    @property
    def tokenizer(self) -> SubwordTokenizer:
        if self.is_empty:
            raise ConfigError("the run-time tagger has no ONNX graph yet: build it with `spacy wnut export-runtime`")
        if self._tokenizer is None:
            self._tokenizer = SubwordTokenizer.from_json(self.tokenizer_json, self.settings)
        return self._tokenizer

    def set_threads(self, n_threads: Optional[int]) -> None:
        """CPU threads for the session (None: ONNX Runtime's default); takes effect when it next opens."""
        if n_threads != self.n_threads:
            self.n_threads = n_threads
            self._session = None

    on_gpu = False

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        """Logits `(n_rows, n_tags)` of the encoder and the head (`engine.Engine`), in chunks of
        `batch_subwords` (`run_in_chunks`)."""
        if self._session is None:
            self._session = OnnxSession(self.onnx_bytes, self.n_threads)
        return run_in_chunks(self._session, encoded, self.batch_subwords)

    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps(
            {
                "onnx": self.onnx_bytes,
                "tokenizer": self.tokenizer_json,
                "settings": self.settings,
                "quantized": self.quantized,
            }
        )

    def from_bytes(self, data: bytes) -> "OnnxEncoder":
        msg = srsly.msgpack_loads(data)
        self.__init__(msg["onnx"], msg["tokenizer"], msg["settings"], msg["quantized"])
        return self

    def __getstate__(self) -> Dict[str, Any]:
        return {"data": self.to_bytes()}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.from_bytes(state["data"])


@serialize_attr.register(OnnxEncoder)
def _serialize_encoder(_: OnnxEncoder, value: OnnxEncoder, name: str, model: Model) -> bytes:
    return value.to_bytes()


@deserialize_attr.register(OnnxEncoder)
def _deserialize_encoder(_: OnnxEncoder, value: bytes, name: str, model: Model) -> OnnxEncoder:
    return OnnxEncoder().from_bytes(value)


def is_runtime_model(model: Model) -> bool:
    """Whether `model` is a run-time `OnnxTagger` (no trainable encoder)."""
    return isinstance(model.attrs.get("onnx_encoder"), OnnxEncoder)


@registry.architectures("spacy_wnut.OnnxTagger.v1")
def build_onnx_tagger(
    window: int = 128,
    stride: int = 96,
    casing_features: bool = False,
    token_features: Optional[Model[List[Doc], List[Floats2d]]] = None,
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """A tagger that runs an exported ONNX graph: prediction only.

    window (int): tokens per window, as the source pipeline's `strided_spans`.
    stride (int): tokens between window starts.
    casing_features (bool): the source model's learned casing bias.
    token_features (Optional[Model]): the source model's token-feature layers
        (e.g. `spacy_wnut.TokenFeatures.v1`), weights copied at export.
    nO (Optional[int]): number of tags.
    """
    check_windows(window, stride)
    head = Linear(nO=nO)
    layers: List[Model] = [head]
    refs = {"output_layer": head}
    if token_features is not None:
        layers.append(token_features)
        refs["token_features"] = token_features
    return Model(
        "onnx_tagger",
        _forward,
        init=_init,
        layers=layers,
        refs=refs,
        dims={"nO": nO},
        params={"casing_W": None} if casing_features else {},
        attrs={
            "casing_features": casing_features,
            "encoder_width": 0,
            "onnx_encoder": OnnxEncoder(),
            "get_spans": partial(strided_spans, window=window, stride=stride),
        },
    )


def _init(model: Model, X=None, Y=None) -> None:
    raise ConfigError(RUNTIME_HINT)


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[SubwordScores, Callable]:
    if is_train:
        raise ConfigError(RUNTIME_HINT)
    if not any(len(doc) for doc in docs):
        return SubwordScores.empty(docs, model.get_dim("nO")), _no_backprop
    encoded = encode_for(model, docs)
    scores = scores_from_logits(model, docs, encoded, model.attrs["onnx_encoder"](encoded))
    output = SubwordScores(
        scores, encoded.align, encoded.doc_lengths, encoded.window_length, cut_subwords=encoded.cut_subwords
    )
    return output, _no_backprop


def _no_backprop(d_scores):
    raise ConfigError(RUNTIME_HINT)


def set_runtime_weights(
    model: Model,
    encoder: OnnxEncoder,
    W: numpy.ndarray,
    b: numpy.ndarray,
    encoder_width: int,
    casing_W: Optional[numpy.ndarray] = None,
    token_features: Optional[bytes] = None,
) -> None:
    """Fill a new `OnnxTagger` with an exported graph and the source model's head and feature weights."""
    head = model.get_ref("output_layer")
    head.set_dim("nO", W.shape[0], force=True)
    head.set_dim("nI", W.shape[1], force=True)
    head.set_param("W", model.ops.asarray2f(W))
    head.set_param("b", model.ops.asarray1f(b))
    model.set_dim("nO", W.shape[0], force=True)
    model.attrs["encoder_width"] = int(encoder_width)
    model.attrs["onnx_encoder"] = encoder
    if model.attrs["casing_features"]:
        if casing_W is None or casing_W.shape != (N_CASINGS, W.shape[0]):
            raise ConfigError(
                "the run-time tagger has casing_features = true but the source model has no casing weights"
            )
        model.set_param("casing_W", model.ops.asarray2f(casing_W))
    if model.has_ref("token_features"):
        if token_features is None:
            raise ConfigError("the run-time tagger has token_features but the source model has none")
        model.get_ref("token_features").from_bytes(token_features)
