"""spacy-wnut: transformer subword NER for spaCy, shown end to end on WNUT 17."""

import importlib
import logging
from typing import Any

from .data.conll import WNUT17_LABELS, read_conll
from .errors import ConfigError, InputError, MissingExtra, OutputError, UserError

__version__ = "0.4.0"

# Loaded on first use, so that `import spacy_wnut` stays light.
_LAZY = {
    "ConversionSummary": "data.convert",
    "convert_conll": "data.convert",
    "convert_hf_dataset": "data.convert",
    "SubwordNER": "pipeline.component",
    "load_pipeline": "pipeline.component",
    "export_runtime": "tools.runtime_export",
    "annotate": "tools.annotate",
    "run_evaluation": "tools.scoring",
    "seqeval_metric_path": "training.hf_metric",
}

__all__ = [
    "WNUT17_LABELS",
    "read_conll",
    "UserError",
    "InputError",
    "OutputError",
    "ConfigError",
    "MissingExtra",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'spacy_wnut' has no attribute {name!r}")


class _UnusableKernelNotices(logging.Filter):
    """Drops torchao's import-time notices about its GPU kernel libraries (and a deprecation it
    triggers in torch), which transformers imports whenever torchao is installed: they say
    nothing about CPU inference and would otherwise print on every command."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            (message.startswith("Failed to load ") and ".so" in message)
            or "KernelPreference" in message
            or "Detected no triton" in message
        )


for _name in ("torchao", "torchao.kernel.intmm", "torch.utils._pytree"):
    logging.getLogger(_name).addFilter(_UnusableKernelNotices())
