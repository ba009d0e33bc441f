"""Inference engines: what runs the trained tagger at prediction time, and their lifecycle.

Training always runs the Thinc/PyTorch model. At prediction time an
`EngineRunner` turns docs into subword scores with one of:

- "torch": the trained PyTorch encoder itself, called directly under
  `torch.inference_mode` (no Thinc wrappers), then the Thinc head;
- "torch-int8": a copy of encoder + head quantised by torchao (dynamic int8);
- "onnx", "onnx-int8": encoder + head exported to ONNX (optionally quantised)
  and run by ONNX Runtime.

Every engine takes its input from `model.encode_docs` and hands its output to
`model.scores_from_hidden` / `scores_from_logits`, so all of them see exactly
the subwords the trained model sees. An engine is built from the weights on
first use, dropped when the weights change, closed before a fork (ONNX
Runtime is not fork-safe) and never pickled; an ONNX graph is saved beside
the pipeline's weights and read back.
"""

import copy
import logging
import os
import tempfile
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Union

import numpy
from spacy.tokens import Doc
from thinc.api import Model, torch2xp

from .model import (
    EncodedBatch,
    SubwordScores,
    encode_docs,
    head_as_torch_linear,
    scores_from_hidden,
    scores_from_logits,
)
from .outputs import atomic_path

ENGINES = ("torch", "torch-int8", "onnx", "onnx-int8")
ONNX_ENGINES = ("onnx", "onnx-int8")
_NEEDS = {
    "torch-int8": (["torchao"], "int8"),
    "onnx": (["onnxruntime", "onnx", "onnxscript"], "onnx"),
    "onnx-int8": (["onnxruntime", "onnx", "onnxscript"], "onnx"),
}
# An engine maps an encoded batch to a (n_rows, width) array: the encoder's
# rows ("torch") or the logits of encoder + head (the others).
Engine = Callable[[EncodedBatch], numpy.ndarray]


def check_engine(name: str) -> None:
    """Raise a clear error for an unknown engine or one whose packages are missing."""
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {name!r}")
    import importlib.util

    packages, extra = _NEEDS.get(name, ([], ""))
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(
            f"engine {name!r} needs the package(s) {', '.join(missing)}: pip install 'spacy-wnut[{extra}]'"
        )


def tagger_module(model: Model) -> "torch.nn.Module":  # noqa: F821
    """The encoder + the head's encoder columns as one PyTorch module, like `AutoModelForTokenClassification`.

    Token features and casing, which need spaCy's tokens, stay outside it
    (`scores_from_logits`). The module shares the encoder's weights with
    `model`: copy it before changing it.
    """
    import torch

    encoder = model.get_ref("transformer").transformer
    classifier = head_as_torch_linear(model)

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.classifier = classifier

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.classifier(hidden)

    return Tagger().eval()


class TorchEngine:
    """The trained encoder run directly in PyTorch: the encoder's rows of an encoded batch."""

    def __init__(self, model: Model) -> None:
        self.encoder = model.get_ref("transformer").transformer

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        import torch

        if self.encoder.training:  # training (the shim's begin_update) switched it to train mode
            self.encoder.eval()
        with torch.inference_mode():
            hidden = self.encoder(**encoded.torch_inputs(self.encoder.device)).last_hidden_state
        return torch2xp(hidden).reshape(-1, hidden.shape[-1])


def build_torch_int8(model: Model) -> Engine:
    """Dynamic int8 quantisation of every linear layer with torchao (weights copied)."""
    import torch
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    module = copy.deepcopy(tagger_module(model))
    quantize_(module, Int8DynamicActivationInt8WeightConfig())

    def run(encoded: EncodedBatch) -> numpy.ndarray:
        with torch.inference_mode():
            logits = module(torch.from_numpy(encoded.input_ids), torch.from_numpy(encoded.attention_mask))
        return logits.float().numpy().reshape(-1, logits.shape[-1])

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
            module,
            example,
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamo=True,
            external_data=False,
            verbose=False,
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

    A session alive when the process forks (`nlp.pipe(n_process=N)`) leaves
    its children hanging, so sessions are closed just before any fork and
    reopened lazily; a forked child opens its own with one thread, so N
    workers do not fight over the cores.
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
            self._session = onnxruntime.InferenceSession(self.onnx_bytes, options, providers=["CPUExecutionProvider"])
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

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        feed = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}
        logits = self._session_here().run(None, feed)[0]
        return logits.reshape(-1, logits.shape[-1])


_OPEN_ENGINES: "weakref.WeakSet[OnnxEngine]" = weakref.WeakSet()


def _close_sessions_before_fork() -> None:
    for engine in list(_OPEN_ENGINES):
        engine.close()


os.register_at_fork(before=_close_sessions_before_fork)


class EngineRunner:
    """The component's inference engine: its settings, the built engine, the ONNX graph, threads and forks.

    Built lazily from the model's weights, dropped by `invalidate()` whenever
    the weights change, saved and loaded beside the weights (ONNX graphs),
    and pickled without anything built (engines and sessions do not pickle;
    a copy rebuilds its own).
    """

    def __init__(self, name: str = "torch", n_threads: Optional[int] = None) -> None:
        check_engine(name)
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be a positive number or null, got {n_threads!r}")
        self.name = name
        self.n_threads = n_threads
        self._engine: Optional[Engine] = None
        self._onnx_bytes: Optional[bytes] = None
        self._pid = os.getpid()
        if n_threads is not None:
            import torch

            torch.set_num_threads(n_threads)

    @property
    def is_built(self) -> bool:
        return self._engine is not None

    @property
    def onnx_file(self) -> str:
        """Where `to_disk` saves the ONNX graph, inside the component's directory."""
        return f"{self.name}.onnx"

    def scores(self, model: Model, docs: List[Doc]) -> SubwordScores:
        """Subword tag scores for docs that hold at least one token."""
        self._guard_fork()
        encoded = encode_docs(model.get_ref("transformer"), docs)
        rows = self.engine(model)(encoded)
        if self.name == "torch":
            scores, _ = scores_from_hidden(model, docs, encoded, rows)
        else:
            scores = scores_from_logits(model, docs, encoded, rows)
        return SubwordScores(
            scores, encoded.align, encoded.doc_lengths, encoded.window_length, cut_subwords=encoded.cut_subwords
        )

    def engine(self, model: Model) -> Engine:
        """The engine for the model's current weights (built on first use)."""
        if self._engine is None:
            if self.name == "torch":
                self._engine = TorchEngine(model)
            elif self.name == "torch-int8":
                self._engine = build_torch_int8(model)
            else:
                if self._onnx_bytes is None:
                    self._onnx_bytes = export_onnx(model, quantize=self.name == "onnx-int8")
                self._engine = OnnxEngine(self._onnx_bytes, self.n_threads)
        return self._engine

    def invalidate(self) -> None:
        """Forget what was built from weights that have changed (the ONNX graph too)."""
        self._engine = None
        self._onnx_bytes = None

    def to_disk(self, path: Union[str, Path], model: Model) -> None:
        """Save an ONNX engine's graph in the component's directory (built first if needed)."""
        if self.name in ONNX_ENGINES:
            self.engine(model)
            with atomic_path(Path(path) / self.onnx_file) as tmp:
                tmp.write_bytes(self._onnx_bytes)

    def from_disk(self, path: Union[str, Path]) -> None:
        """Drop anything built; take a saved ONNX graph for this engine if there is one."""
        self._engine = None
        saved = Path(path) / self.onnx_file
        self._onnx_bytes = saved.read_bytes() if self.name in ONNX_ENGINES and saved.exists() else None

    def _guard_fork(self) -> None:
        """In a forked worker (`nlp.pipe(n_process=N)` on Linux), use one torch thread.

        The parent's OpenMP pool does not survive `fork`: the first parallel op
        in the child would hang. One thread per worker is also the right split
        of the cores between N workers.
        """
        if os.getpid() != self._pid:
            import torch

            torch.set_num_threads(1)
            self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"name": self.name, "n_threads": self.n_threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["n_threads"])
