"""Inference engines: the trained tagger (encoder + head) run by torch fp32, torchao int8 or ONNX Runtime.

Training always runs the Thinc/PyTorch model. An engine other than "torch" is
built from the trained weights the first time the component predicts (or, for
ONNX, read from the file saved beside the pipeline) and only ever predicts.
Tokenisation, windows and alignment stay spacy-transformers' own, so every
engine sees exactly the subwords the fp32 model sees.
"""
import copy
import logging
import os
import tempfile
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import numpy
from spacy.tokens import Doc
from spacy_transformers.align import get_alignment_via_offset_mapping
from spacy_transformers.data_classes import WordpieceBatch
from spacy_transformers.layers.transformer_model import huggingface_tokenize
from spacy_transformers.truncate import truncate_oversize_splits
from thinc.api import Model

from .model import SubwordScores, add_casing_bias, check_alignment

ENGINES = ("torch", "torch-int8", "onnx", "onnx-int8")
ONNX_ENGINES = ("onnx", "onnx-int8")
_NEEDS = {
    "torch-int8": (["torchao"], "int8"),
    "onnx": (["onnxruntime", "onnx", "onnxscript"], "onnx"),
    "onnx-int8": (["onnxruntime", "onnx", "onnxscript"], "onnx"),
}
# Logits of a batch of windows: (input_ids, attention_mask) -> (n_windows, length, n_tags).
Engine = Callable[[numpy.ndarray, numpy.ndarray], numpy.ndarray]


def check_engine(name: str) -> None:
    """Raise a clear error for an unknown engine or one whose packages are missing."""
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {name!r}")
    import importlib.util

    packages, extra = _NEEDS.get(name, ([], ""))
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(
            f"engine {name!r} needs the package(s) {', '.join(missing)}: "
            f"pip install 'spacy-wnut[{extra}]'"
        )


def tagger_module(model: Model) -> "torch.nn.Module":  # noqa: F821
    """The encoder + linear head as one PyTorch module, like `AutoModelForTokenClassification`.

    The module shares the encoder's weights with `model`: copy it before changing it.
    """
    import torch

    encoder = model.get_ref("transformer").transformer
    head = model.get_ref("output_layer")
    W, b = head.get_param("W"), head.get_param("b")
    classifier = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        classifier.weight.copy_(torch.from_numpy(numpy.ascontiguousarray(W)))
        classifier.bias.copy_(torch.from_numpy(numpy.ascontiguousarray(b)))

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.classifier = classifier

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.classifier(hidden)

    return Tagger().eval()


def build_torch_int8(model: Model) -> Engine:
    """Dynamic int8 quantisation of every linear layer with torchao (weights copied)."""
    import torch
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    module = copy.deepcopy(tagger_module(model))
    quantize_(module, Int8DynamicActivationInt8WeightConfig())

    def run(input_ids: numpy.ndarray, attention_mask: numpy.ndarray) -> numpy.ndarray:
        with torch.inference_mode():
            logits = module(torch.from_numpy(input_ids), torch.from_numpy(attention_mask.astype("int64")))
        return logits.float().numpy()

    return run


def export_onnx(model: Model, quantize: bool) -> bytes:
    """The tagger as an ONNX graph (dynamic batch and length), optionally int8-quantised."""
    import torch

    module = tagger_module(model)
    example = (torch.ones((1, 4), dtype=torch.long), torch.ones((1, 4), dtype=torch.long))
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("length")}
    with tempfile.TemporaryDirectory() as tmp, _quiet_exporters():
        path = Path(tmp) / "tagger.onnx"
        torch.onnx.export(
            module, example, str(path), input_names=["input_ids", "attention_mask"],
            output_names=["logits"], dynamo=True, external_data=False, verbose=False,
            dynamic_shapes={"input_ids": dims, "attention_mask": dims},
        )
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(tmp) / "tagger-int8.onnx"
            # Per-channel scales: per-tensor ones cost 2.6 dev F1 points on WNUT 17 (MiniLM-L6).
            quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
            path = quantized
        return path.read_bytes()


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporter's and quantiser's advice that does not apply here
    (torchvision ops, pre-processing for static quantisation)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "root")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


class OnnxEngine:
    """An ONNX Runtime session over an exported tagger, opened on first use.

    ONNX Runtime is not fork-safe: a session alive when the process forks
    (`nlp.pipe(n_process=N)`) leaves its children hanging. Sessions are closed
    just before any fork and reopened lazily; a forked child opens its own
    with one thread, so N workers do not fight over the cores.
    """

    def __init__(self, onnx_bytes: bytes, n_threads: Optional[int]) -> None:
        self.onnx_bytes = onnx_bytes
        self.n_threads = n_threads
        self._session = None
        self._owner_pid = os.getpid()
        _OPEN_ENGINES.add(self)

    def _session_here(self):
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads()
            self._session = onnxruntime.InferenceSession(
                self.onnx_bytes, options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def _threads(self) -> int:
        if os.getpid() != self._owner_pid:
            return 1
        if self.n_threads is not None:
            return self.n_threads
        import torch

        return torch.get_num_threads()

    def close(self) -> None:
        """Close the session (it reopens on the next call)."""
        self._session = None

    def __call__(self, input_ids: numpy.ndarray, attention_mask: numpy.ndarray) -> numpy.ndarray:
        feed = {"input_ids": input_ids.astype("int64"), "attention_mask": attention_mask.astype("int64")}
        return self._session_here().run(None, feed)[0]


_OPEN_ENGINES: "weakref.WeakSet[OnnxEngine]" = weakref.WeakSet()


def _close_sessions_before_fork() -> None:
    for engine in list(_OPEN_ENGINES):
        engine.close()


os.register_at_fork(before=_close_sessions_before_fork)


class EngineSlot:
    """Holds the engine built in this process. Pickles empty: ONNX Runtime
    sessions and quantised modules do not pickle, so a copy rebuilds its own."""

    def __init__(self) -> None:
        self.engine: Optional[Engine] = None

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.engine = None


def build_engine(name: str, model: Model, n_threads: Optional[int], onnx_bytes: Optional[bytes] = None) -> Engine:
    """An engine other than "torch", from the model's weights (ONNX engines: from `export_onnx`'s bytes)."""
    check_engine(name)
    if name == "torch-int8":
        return build_torch_int8(model)
    if name in ONNX_ENGINES:
        if onnx_bytes is None:
            raise ValueError(f"engine {name!r} is built from an ONNX graph: pass export_onnx's bytes")
        return OnnxEngine(onnx_bytes, n_threads)
    raise ValueError(f"engine {name!r} is the Thinc model itself; nothing to build")


def engine_scores(model: Model, engine: Engine, docs: List[Doc]) -> SubwordScores:
    """Subword scores for `docs` from `engine`, with the same windows and alignment as `model`."""
    transformer = model.get_ref("transformer")
    tokenizer = transformer.tokenizer
    nested_spans = transformer.attrs["get_spans"](docs)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    encoding = huggingface_tokenize(tokenizer, [span.text for span in flat_spans])
    wordpieces = WordpieceBatch.from_batch_encoding(encoding)
    align = get_alignment_via_offset_mapping(flat_spans, encoding["offset_mapping"])
    wordpieces, align = truncate_oversize_splits(wordpieces, align, tokenizer.model_max_length)
    logits = engine(numpy.asarray(wordpieces.input_ids), numpy.asarray(wordpieces.attention_mask))
    n_windows, window_length, n_tags = logits.shape
    scores = numpy.ascontiguousarray(logits.reshape(-1, n_tags), dtype="f")
    lengths = check_alignment(docs, align)
    scores, _ = add_casing_bias(model, docs, align, scores)
    return SubwordScores(scores, align, lengths, window_length)
