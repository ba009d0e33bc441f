"""Pipelines saved by spacy-wnut 0.2/0.3, whose encoder was spacy-transformers' `TransformerModel.v3`.

spacy-wnut 0.4 has its own encoder layer (`spacy_wnut.HFEncoder.v1`) and does
not need spacy-transformers. Where spacy-transformers is not installed, the
old architecture name is registered here as the new layer, and the old
encoder bytes (a msgpack of the config dict, a `torch.save` state dict and
the tokenizer files) are read by `hf_encoder.HFShim` with
`torch.load(weights_only=True)`: an old pipeline loads and predicts as before. `spacy wnut migrate` saves it in the
new format (safetensors, exact config.json, the new architecture's name).
"""

import importlib.util
import warnings
from typing import Callable, List

from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import Model

LEGACY_ENCODER = "spacy-transformers.TransformerModel.v3"
LEGACY_SPAN_GETTERS = ("spacy-transformers.strided_spans.v1", "spacy-transformers.doc_spans.v1")
MIGRATE_HINT = "`spacy wnut migrate OLD NEW` saves it in spacy-wnut's own format"


class LegacyEncoderWarning(UserWarning):
    """A pipeline or config names spacy-transformers' encoder and is read with spacy-wnut's own."""


def spacy_transformers_installed() -> bool:
    """Whether spacy-transformers is installed (its names are then its own, not read here)."""
    try:
        return importlib.util.find_spec("spacy_transformers") is not None
    except (ImportError, ValueError):  # a finder that refuses the name: not importable here
        return False


def build_legacy_encoder(
    name: str,
    get_spans: Callable[[List[Doc]], List[List[Span]]],
    tokenizer_config: dict = {},  # noqa: B006 (confection writes the default into configs; never mutated)
    transformer_config: dict = {},  # noqa: B006 (confection writes the default into configs; never mutated)
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},  # noqa: B006 (confection writes the default into configs; never mutated)
) -> Model:
    """`spacy-transformers.TransformerModel.v3` read as `spacy_wnut.HFEncoder.v1` (same serialised layout).

    tokenizer_config (dict): ignored: the tokenizer is the saved one (always fast).
    """
    from .hf_encoder import build_hf_encoder

    warnings.warn(
        f"[spacy_wnut] {LEGACY_ENCODER} ({name}): a pipeline or config of spacy-wnut 0.3 or earlier, read with "
        f"spacy-wnut's own encoder (spacy_wnut.HFEncoder.v1, no spacy-transformers); {MIGRATE_HINT}",
        LegacyEncoderWarning,
        stacklevel=2,
    )
    return build_hf_encoder(name, get_spans, mixed_precision, grad_scaler_config, transformer_config)


def _strided_spans(window: int, stride: int):
    from .windows import configure_strided_spans

    return configure_strided_spans(window, stride)


def _doc_spans():
    return lambda docs: [[doc[:]] for doc in docs]


def register_legacy_names() -> None:
    """Register spacy-transformers' architecture and span getter names, where it is not installed."""
    if spacy_transformers_installed():
        return
    if LEGACY_ENCODER not in registry.architectures.get_all():
        registry.architectures.register(LEGACY_ENCODER, func=build_legacy_encoder)
    getters = registry.span_getters.get_all()
    for name, func in zip(LEGACY_SPAN_GETTERS, (_strided_spans, _doc_spans)):
        if name not in getters:
            registry.span_getters.register(name, func=func)
