"""Inference engines: what runs the trained tagger at prediction time, and their lifecycle.

Training always runs the Thinc/PyTorch model. At prediction time an
`EngineRunner` turns docs into subword scores with one of:

- "torch": the trained PyTorch encoder itself with a copy of the head's
  encoder columns, called directly under `torch.inference_mode` (no Thinc wrappers);
- "torch-int8": a copy of encoder + head quantised by torchao (dynamic int8);
- "onnx", "onnx-int8": encoder + head exported to ONNX (optionally quantised)
  and run by ONNX Runtime.

Every engine keeps one contract (`ml/engine.py`): it takes its input from
`encoding.encode_docs` and returns the logits of the encoder and the head's
encoder columns, which `head.scores_from_logits` completes, so all of them see
exactly the subwords the trained model sees and the head's maths is in one place. An engine is built from the weights on
first use, dropped when the weights change, closed before a fork (ONNX
Runtime is not fork-safe) and never pickled; an ONNX graph is saved beside
the pipeline's weights and read back. A run-time pipeline
(`spacy_wnut.OnnxTagger.v1`) carries its graph inside its model and runs it
itself. torch is imported only by the engines that need it.
"""

import copy
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Union

import numpy
from spacy.tokens import Doc
from thinc.api import Model

from ..data.outputs import atomic_path
from ..errors import ConfigError, require
from ..ml.chunking import run_in_chunks
from ..ml.encoding import EncodedBatch, encode_for
from ..ml.engine import Engine
from ..ml.head import SubwordScores, head_as_torch_linear, scores_from_logits
from ..ml.hf_encoder import encoder_model
from ..ml.onnx_tagger import OnnxSession, is_runtime_model

ENGINES = ("torch", "torch-int8", "onnx", "onnx-int8")
ONNX_ENGINES = ("onnx", "onnx-int8")
# What running each engine needs (import names, extra); building an ONNX graph needs EXPORT_NEEDS too.
_NEEDS = {
    "torch": (["torch"], "train"),
    "torch-int8": (["torch", "torchao"], "int8"),
    "onnx": (["onnxruntime"], "onnx"),
    "onnx-int8": (["onnxruntime"], "onnx"),
}
EXPORT_NEEDS = (["torch", "onnx", "onnxscript"], "train")


def check_engine(name: str) -> None:
    """Raise a clear error for an unknown engine (`ConfigError`) or one whose packages are missing (`MissingExtra`)."""
    if name not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {name!r}")
    packages, extra = _NEEDS[name]
    require(f"engine {name!r}", packages, extra)


def tagger_module(model: Model) -> "torch.nn.Module":  # noqa: F821
    """The encoder + the head's encoder columns as one PyTorch module, like `AutoModelForTokenClassification`.

    Token features and casing, which need spaCy's tokens, stay outside it
    (`scores_from_logits`). The module shares the encoder's weights with
    `model`: copy it before changing it.
    """
    import torch

    encoder = encoder_model(model.get_ref("transformer"))
    classifier = head_as_torch_linear(model)

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.classifier = classifier

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.classifier(self.encoder(**inputs).last_hidden_state)

    return Tagger().eval()


class TorchEngine:
    """The trained encoder run directly in PyTorch, with a copy of the head's encoder columns (`tagger_module`)."""

    def __init__(self, model: Model) -> None:
        self.module = tagger_module(model)
        self.module.classifier.to(self.module.encoder.device)

    @property
    def on_gpu(self) -> bool:
        return self.module.encoder.device.type != "cpu"

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        import torch
        from thinc.api import torch2xp

        if self.module.encoder.training:  # training (the shim's begin_update) switched it to train mode
            self.module.encoder.eval()
        with torch.inference_mode():
            logits = self.module(**encoded.torch_inputs(self.module.encoder.device))
        return torch2xp(logits).reshape(-1, logits.shape[-1])


class TorchInt8Engine:
    """Dynamic int8 quantisation of every linear layer of a copy of the tagger, with torchao."""

    on_gpu = False

    def __init__(self, model: Model) -> None:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        self.module = copy.deepcopy(tagger_module(model))
        quantize_(self.module, Int8DynamicActivationInt8WeightConfig())

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.module(torch.from_numpy(encoded.input_ids), torch.from_numpy(encoded.attention_mask))
        return logits.float().numpy().reshape(-1, logits.shape[-1])


def export_onnx(model: Model, quantize: bool) -> bytes:
    """The tagger as an ONNX graph (dynamic batch and length), optionally int8-quantised."""
    require("building an ONNX graph", *EXPORT_NEEDS)
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
            # Projections down from a wider input (the feed-forward output, the head) stay fp32: their
            # inputs carry the activation outliers; quantising them too cost 1.1 dev F1 points, this none.
            quantize_dynamic(
                str(path),
                str(quantized),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=down_projections(path),
            )
            path = quantized
        return path.read_bytes()


def down_projections(path: Path) -> List[str]:
    """Names of the graph's MatMuls whose constant weight maps a wider input onto a narrower output."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    shapes = {init.name: numpy_helper.to_array(init).shape for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and len(shapes.get(node.input[1], ())) == 2
        and shapes[node.input[1]][0] > shapes[node.input[1]][1]
    ]


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


class EngineRunner:
    """The component's inference engine: its settings, the built engine, the ONNX graph, threads and forks.

    Built lazily from the model's weights, dropped by `invalidate()` whenever
    the weights change, saved and loaded beside the weights (ONNX graphs),
    and pickled without anything built (engines and sessions do not pickle;
    a copy rebuilds its own).
    """

    def __init__(
        self, name: str = "torch", n_threads: Optional[int] = None, batch_subwords: Optional[int] = None
    ) -> None:
        check_engine(name)
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads must be a positive number or null, got {n_threads!r}")
        if batch_subwords is not None and (isinstance(batch_subwords, bool) or batch_subwords < 1):
            raise ConfigError(f"batch_subwords must be a positive number or null, got {batch_subwords!r}")
        self.name = name
        self.n_threads = n_threads
        self.batch_subwords = batch_subwords
        self._engine: Optional[Engine] = None
        self._onnx_bytes: Optional[bytes] = None
        self._pid = os.getpid()
        torch = sys.modules.get("torch")  # never imported here: a run-time pipeline has none
        if n_threads is not None and torch is not None:
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
        if is_runtime_model(model):
            return self._runtime_scores(model, docs)
        encoded = encode_for(model, docs)
        engine = self.engine(model)
        logits = run_in_chunks(engine, encoded, None if engine.on_gpu else self.batch_subwords)
        scores = scores_from_logits(model, docs, encoded, logits)
        return SubwordScores(
            scores, encoded.align, encoded.doc_lengths, encoded.window_length, cut_subwords=encoded.cut_subwords
        )

    def _runtime_scores(self, model: Model, docs: List[Doc]) -> SubwordScores:
        """A run-time tagger runs its own graph; the engine named must be the graph it holds."""
        encoder = model.attrs["onnx_encoder"]
        if not encoder.is_empty and encoder.engine != self.name:
            raise ConfigError(
                f"engine {self.name!r}: this run-time pipeline holds an {encoder.engine!r} graph; set engine = "
                f"{encoder.engine!r}, or export another with `spacy wnut export-runtime`"
            )
        encoder.set_threads(self.n_threads)
        encoder.batch_subwords = self.batch_subwords
        return model.predict(docs)

    def engine(self, model: Model) -> Engine:
        """The engine for the model's current weights (built on first use)."""
        if self._engine is None:
            self._engine = _BUILDERS[self.name](self, model)
        return self._engine

    def _onnx_session(self, model: Model) -> OnnxSession:
        if self._onnx_bytes is None:
            self._onnx_bytes = export_onnx(model, quantize=self.name == "onnx-int8")
        return OnnxSession(self._onnx_bytes, self.n_threads)

    def invalidate(self) -> None:
        """Forget what was built from weights that have changed (the ONNX graph too)."""
        self._engine = None
        self._onnx_bytes = None

    def to_disk(self, path: Union[str, Path], model: Model) -> None:
        """Save an ONNX engine's graph in the component's directory (built first if needed).

        A run-time tagger's graph is saved with its weights instead.
        """
        if self.name in ONNX_ENGINES and not is_runtime_model(model):
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
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.set_num_threads(1)
            self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"name": self.name, "n_threads": self.n_threads, "batch_subwords": self.batch_subwords}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["n_threads"], state.get("batch_subwords"))


_BUILDERS: Dict[str, Callable[[EngineRunner, Model], Engine]] = {
    "torch": lambda runner, model: TorchEngine(model),
    "torch-int8": lambda runner, model: TorchInt8Engine(model),
    "onnx": EngineRunner._onnx_session,
    "onnx-int8": EngineRunner._onnx_session,
}
