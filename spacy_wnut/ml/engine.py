"""The one contract every inference engine keeps: an encoded batch in, the tagger's logits out.

An engine runs the encoder and the head's encoder columns (what
`AutoModelForTokenClassification` holds) on the subword windows of
`encoding.encode_docs`, and returns their logits, one row per window position
(`(n_rows, n_tags)`). Everything of the head that needs spaCy's tokens (the
token-feature columns, the casing bias) is added afterwards, in one place
(`head.scores_from_logits`), whatever the engine. The engines: "torch",
"torch-int8", "onnx", "onnx-int8" (`pipeline/engines.py`) and the run-time
pipeline's graph (`onnx_tagger.OnnxEncoder`).
"""

from typing import Protocol, runtime_checkable

import numpy

from .encoding import EncodedBatch


@runtime_checkable
class Engine(Protocol):
    """Runs the tagger (encoder + the head's encoder columns) on an encoded batch."""

    @property
    def on_gpu(self) -> bool:
        """Whether it runs on a GPU (then one call over the whole batch is best, not chunks)."""
        ...

    def __call__(self, encoded: EncodedBatch) -> numpy.ndarray:
        """encoded (EncodedBatch): the windows. RETURNS (numpy.ndarray): (n_rows, n_tags) logits."""
        ...
