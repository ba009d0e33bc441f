"""Reading a Hugging Face token-classification checkpoint's head: its tags (`id2label`) and its
`classifier` weights, for a `wnut_ner` component initialised from it (`checkpoint_head`).

The component's `initialize` calls these (lazily: they need `transformers`);
`tools/hf_checkpoint.py` builds whole pipelines from checkpoints and writes them back.
"""

from pathlib import Path
from typing import Union

from thinc.api import Model

from ..errors import ConfigError, InputError
from ..ml.hf_encoder import check_vocabulary
from .schemes import HeadScheme

TOKEN_CLASSIFICATION = "ForTokenClassification"


def read_head_scheme(checkpoint: Union[str, Path], scheme: str = "auto") -> HeadScheme:
    """The tags of a checkpoint's head, from its config's `id2label` (a guessed scheme is warned about)."""
    config = checkpoint_config(checkpoint)
    try:
        return HeadScheme.from_id2label(config.id2label, scheme)
    except ValueError as err:
        raise ConfigError(f"{checkpoint}: {err}") from None


def checkpoint_config(checkpoint: Union[str, Path]):
    """The checkpoint's `transformers` config, refusing one that is not for token classification.

    A config naming its `architectures` must name a `...ForTokenClassification`
    model: a sequence-classification head (one row per text, not per token)
    would otherwise be replaced by a random one without a word.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(checkpoint))
    except (OSError, ValueError) as err:
        raise InputError(str(checkpoint), f"not a Hugging Face checkpoint ({type(err).__name__}: {err})") from None
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith(TOKEN_CLASSIFICATION) for name in architectures):
        raise InputError(
            str(checkpoint),
            f"a {', '.join(architectures)} checkpoint, not a token-classification (NER) one "
            f"(*{TOKEN_CLASSIFICATION}); its head cannot tag tokens",
        )
    return config


def check_tokenizer(checkpoint: Union[str, Path]) -> None:
    """Refuse a checkpoint whose tokenizer cannot be loaded (e.g. saved without its tokenizer files)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise InputError(
            str(checkpoint),
            f"its tokenizer cannot be loaded ({type(err).__name__}: {err}); save the tokenizer files with the "
            "checkpoint (`tokenizer.save_pretrained(...)`)",
        ) from None
    check_vocabulary(tokenizer, str(checkpoint))


def load_classifier(model: Model, checkpoint: Union[str, Path]) -> None:
    """Copy the checkpoint's `classifier` weights into the head of a `SubwordTagger` model.

    Refuses a checkpoint without token-classification weights (which
    `transformers` would initialise at random), and a head of another shape.
    """
    from transformers import AutoModelForTokenClassification

    hf_model, loading = AutoModelForTokenClassification.from_pretrained(str(checkpoint), output_loading_info=True)
    classifier = getattr(hf_model, "classifier", None)
    head = model.get_ref("output_layer")
    if classifier is None or not hasattr(classifier, "weight"):
        raise InputError(str(checkpoint), f"{type(hf_model).__name__} has no linear `classifier` head to import")
    missing = [key for key in loading.get("missing_keys", []) if key.startswith("classifier.")]
    if missing:
        raise InputError(
            str(checkpoint),
            f"holds no token-classification head (no weights for {', '.join(missing)}): it is not a "
            "token-classification (NER) checkpoint",
        )
    declared = getattr(hf_model.config, "architectures", None)
    other_head = [key for key in loading.get("unexpected_keys", []) if "pooler" in key or "pre_classifier" in key]
    if not declared and other_head:
        # A sequence classifier's `classifier` has the shape of a token classifier's; what gives it
        # away is the pooled-output layer it reads from (a config naming its architecture is trusted).
        raise InputError(
            str(checkpoint),
            f"holds the weights of a sequence-classification head ({', '.join(other_head[:3])}), and its config "
            "names no architecture: it is not a token-classification (NER) checkpoint",
        )
    weight = classifier.weight.detach().cpu().numpy()
    if weight.shape != head.get_param("W").shape:
        raise InputError(
            str(checkpoint),
            f"classifier is {weight.shape}, the component's head is {head.get_param('W').shape}",
        )
    head.set_param("W", head.ops.asarray2f(weight))
    head.set_param("b", head.ops.asarray1f(classifier.bias.detach().cpu().numpy()))
