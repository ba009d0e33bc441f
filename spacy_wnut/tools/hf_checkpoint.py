"""Hugging Face token-classification checkpoints in and out of a `wnut_ner` component.

In: `from_hf` (or the `checkpoint_head` initialize setting) takes a checkpoint's
encoder, `id2label` and `classifier` weights, so the component predicts as
the checkpoint does with no training. Out: `export_hf` writes a trained
component as a checkpoint (config with `id2label`/`label2id`, safetensors
weights, tokenizer files) that `AutoModelForTokenClassification` and
`pipeline("token-classification")` load unchanged.
"""

import copy
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import get_words_and_spaces
from spacy.vocab import Vocab

from ..data.outputs import DIRECTORY, atomic_path, check_output
from ..errors import TRAIN_PACKAGES, ConfigError, require
from ..ml.head import has_spacy_features, head_as_torch_linear
from ..ml.hf_encoder import encoder_model, encoder_tokenizer
from ..ml.onnx_tagger import is_runtime_model
from ..pipeline.component import find_wnut_pipe
from ..pipeline.hf_head import check_tokenizer, checkpoint_config


def from_hf(
    checkpoint: Union[str, Path],
    *,
    scheme: str = "auto",
    nlp: Optional[Language] = None,
    name: str = "wnut_ner",
    config: Optional[Dict[str, Any]] = None,
    lang: str = "en",
) -> Language:
    """A pipeline whose `wnut_ner` predicts as the HF checkpoint does (no training).

    nlp: add the component to this pipeline (default: `spacy.blank(lang)`).
    config: further component config (e.g. `{"spans_key": "sc"}`).
    """
    require("import-hf", TRAIN_PACKAGES, "train")
    checkpoint_config(checkpoint)
    check_tokenizer(checkpoint)
    nlp = nlp if nlp is not None else spacy.blank(lang)
    component_config = copy.deepcopy(config or {})
    component_config.setdefault("model", {}).setdefault("transformer", {})["name"] = str(checkpoint)
    pipe = nlp.add_pipe("wnut_ner", name=name, config=component_config)
    sample = [Example.from_dict(nlp.make_doc("checkpoint"), {})]
    pipe.initialize(lambda: sample, nlp=nlp, checkpoint_head=True, checkpoint_scheme=scheme)
    return nlp


def import_hf(
    checkpoint: Union[str, Path],
    output: Union[str, Path],
    *,
    scheme: str = "auto",
    lang: str = "en",
    name: str = "wnut_ner",
    overwrite: bool = False,
):
    """`from_hf` saved as a pipeline directory (atomically); returns the component.

    name (str): the component's name in the new pipeline.
    overwrite (bool): replace an existing output directory.
    """
    inputs = [checkpoint] if Path(str(checkpoint)).exists() else []
    check_output(output, inputs, overwrite=overwrite, kind=DIRECTORY)
    nlp = from_hf(checkpoint, scheme=scheme, lang=lang, name=name)
    with atomic_path(output) as tmp:
        nlp.to_disk(tmp)
    return nlp.get_pipe(name)


def to_hf_model(nlp: Language, name: Optional[str] = None):
    """The component as a `transformers` token-classification model (a copy of its weights).

    name (Optional[str]): the component; None finds the pipeline's one `wnut_ner` component.
    """
    from transformers import AutoModelForTokenClassification

    name, pipe = find_wnut_pipe(nlp, name)
    if is_runtime_model(pipe.model):
        raise ConfigError(
            f"[{name}] is a run-time pipeline (an ONNX graph, made by export-runtime): it holds no encoder weights "
            "to export; export the trainable pipeline it was made from"
        )
    if has_spacy_features(pipe.model):
        raise ConfigError(
            f"[{name}] uses spaCy token features (`model.casing_features` or `model.token_features`), "
            "which a HF token-classification checkpoint cannot hold; train with them off to export"
        )
    encoder = encoder_model(pipe.model.get_ref("transformer"))
    tags = pipe.head.tags
    config = copy.deepcopy(encoder.config)
    config.id2label = dict(enumerate(tags))
    config.label2id = {tag: i for i, tag in enumerate(tags)}
    config.architectures = None
    hf_model = AutoModelForTokenClassification.from_config(config)
    missing, unexpected = hf_model.base_model.load_state_dict(encoder.state_dict(), strict=False)
    # AutoModel has a pooler that token classification drops; nothing else may differ.
    unexpected = [key for key in unexpected if not key.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(
            f"encoder weights do not fit {type(hf_model).__name__}: missing {missing}, unexpected {unexpected}"
        )
    hf_model.classifier = head_as_torch_linear(pipe.model)
    return hf_model.eval()


def export_hf(
    nlp: Union[Language, str, Path],
    output: Union[str, Path],
    name: Optional[str] = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the component as a HF checkpoint directory (safetensors weights + tokenizer).

    name (Optional[str]): the component; None finds the pipeline's one `wnut_ner` component.
    overwrite (bool): replace an existing output directory.
    """
    require("export-hf", TRAIN_PACKAGES, "train")
    from ..pipeline.component import load_pipeline

    check_output(output, [] if isinstance(nlp, Language) else [nlp], overwrite=overwrite, kind=DIRECTORY)
    if not isinstance(nlp, Language):
        nlp = load_pipeline(nlp)
    name, pipe = find_wnut_pipe(nlp, name)
    hf_model = to_hf_model(nlp, name)
    with atomic_path(output) as tmp:
        hf_model.save_pretrained(tmp, safe_serialization=True)
        encoder_tokenizer(pipe.model.get_ref("transformer")).save_pretrained(tmp)
    return Path(output)


def pipeline_words_doc(vocab: Vocab, tokenizer, text: str) -> Doc:
    """A Doc of `text` whose tokens are the words `pipeline("token-classification")` labels.

    The pipeline labels the words of the tokenizer's pre-tokenizer (split at
    whitespace and punctuation: `@user` is two words), not spaCy tokens. With
    these tokens and `decoder="argmax"`, the component groups entities as the
    pipeline does. Characters the tokenizer drops become tokens of their own.
    """
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, truncation=False)
    bounds: Dict[int, List[int]] = {}
    for word_id, (start, end) in zip(encoding.word_ids(), encoding["offset_mapping"]):
        if word_id is not None and end > start:
            span = bounds.setdefault(word_id, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    cuts = sorted({0, len(text)} | {cut for span in bounds.values() for cut in span})
    words = [run for a, b in zip(cuts, cuts[1:]) for run in re.findall(r"\S+", text[a:b])]
    words, spaces = get_words_and_spaces(words, text)
    return Doc(vocab, words=words, spaces=spaces)
