"""spacy-wnut: transformer subword NER for spaCy, shown end to end on WNUT 17."""

import logging

from .conll import WNUT17_LABELS, InputError, read_conll
from .convert import ConversionSummary, convert_conll, convert_hf_dataset

__version__ = "0.2.0"

__all__ = [
    "WNUT17_LABELS",
    "InputError",
    "read_conll",
    "ConversionSummary",
    "convert_conll",
    "convert_hf_dataset",
    "__version__",
]


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
