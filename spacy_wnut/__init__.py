"""spacy-wnut: transformer subword NER for spaCy, shown end to end on WNUT 17."""
from .conll import WNUT17_LABELS, InputError, read_conll
from .convert import ConversionSummary, convert_conll, convert_hf_dataset

__version__ = "0.1.0"

__all__ = [
    "WNUT17_LABELS",
    "InputError",
    "read_conll",
    "ConversionSummary",
    "convert_conll",
    "convert_hf_dataset",
    "__version__",
]
