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

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import get_words_and_spaces
from spacy.vocab import Vocab
from spacy.training import Example
from thinc.api import Model

from .schemes import HeadScheme


def read_head_scheme(checkpoint: Union[str, Path], scheme: str = "auto") -> HeadScheme:
    """The tags of a checkpoint's head, from its config's `id2label`."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(checkpoint))
    try:
        return HeadScheme.from_id2label(config.id2label, scheme)
    except ValueError as err:
        raise ValueError(f"{checkpoint}: {err}") from None


def load_classifier(model: Model, checkpoint: Union[str, Path]) -> None:
    """Copy the checkpoint's `classifier` weights into the head of a `SubwordTagger` model."""
    from transformers import AutoModelForTokenClassification

    hf_model = AutoModelForTokenClassification.from_pretrained(str(checkpoint))
    classifier = getattr(hf_model, "classifier", None)
    head = model.get_ref("output_layer")
    if classifier is None or not hasattr(classifier, "weight"):
        raise ValueError(
            f"{checkpoint}: {type(hf_model).__name__} has no linear `classifier` head to import"
        )
    weight = classifier.weight.detach().cpu().numpy()
    if weight.shape != head.get_param("W").shape:
        raise ValueError(
            f"{checkpoint}: classifier is {weight.shape}, the component's head is {head.get_param('W').shape}"
        )
    head.set_param("W", head.ops.asarray2f(weight))
    head.set_param("b", head.ops.asarray1f(classifier.bias.detach().cpu().numpy()))


def from_hf(
    checkpoint: Union[str, Path], *, scheme: str = "auto", nlp: Optional[Language] = None,
    name: str = "wnut_ner", config: Optional[Dict[str, Any]] = None, lang: str = "en",
) -> Language:
    """A pipeline whose `wnut_ner` predicts as the HF checkpoint does (no training).

    nlp: add the component to this pipeline (default: `spacy.blank(lang)`).
    config: further component config (e.g. `{"spans_key": "sc"}`).
    """
    nlp = nlp if nlp is not None else spacy.blank(lang)
    component_config = copy.deepcopy(config or {})
    component_config.setdefault("model", {}).setdefault("transformer", {})["name"] = str(checkpoint)
    pipe = nlp.add_pipe("wnut_ner", name=name, config=component_config)
    sample = [Example.from_dict(nlp.make_doc("checkpoint"), {})]
    pipe.initialize(lambda: sample, nlp=nlp, checkpoint_head=True, checkpoint_scheme=scheme)
    return nlp


def to_hf_model(nlp: Language, name: str = "wnut_ner"):
    """The component as a `transformers` token-classification model (a copy of its weights)."""
    from transformers import AutoModelForTokenClassification

    pipe = nlp.get_pipe(name)
    if pipe.model.attrs.get("casing_features"):
        raise ValueError(
            f"[{name}] uses spaCy token casing features (`model.casing_features = true`), "
            "which a HF token-classification checkpoint cannot hold"
        )
    encoder = pipe.model.get_ref("transformer").transformer
    head_layer = pipe.model.get_ref("output_layer")
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
        raise ValueError(f"encoder weights do not fit {type(hf_model).__name__}: missing {missing}, unexpected {unexpected}")
    import torch

    with torch.no_grad():
        hf_model.classifier.weight.copy_(torch.from_numpy(numpy.asarray(head_layer.get_param("W"))))
        hf_model.classifier.bias.copy_(torch.from_numpy(numpy.asarray(head_layer.get_param("b"))))
    return hf_model.eval()


def export_hf(nlp: Union[Language, str, Path], output: Union[str, Path], name: str = "wnut_ner") -> Path:
    """Write the component as a HF checkpoint directory (safetensors weights + tokenizer)."""
    if not isinstance(nlp, Language):
        nlp = spacy.load(nlp)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    to_hf_model(nlp, name).save_pretrained(output, safe_serialization=True)
    nlp.get_pipe(name).model.get_ref("transformer").tokenizer.save_pretrained(output)
    return output


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


def pipeline_word_tags(hf_model, tokenizer, text: str) -> List[str]:
    """The tag `pipeline(..., aggregation_strategy="first")` gives each of its words.

    A word is a run of subwords whose later pieces carry the tokenizer's
    continuing-subword prefix (`##`): punctuation splits words, unlike spaCy.
    """
    import torch

    encoded = tokenizer(text, return_tensors="pt", truncation=True, return_special_tokens_mask=True)
    special = encoded.pop("special_tokens_mask")[0].tolist()
    with torch.inference_mode():
        ids = hf_model(**encoded).logits[0].argmax(-1).tolist()
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    prefix = getattr(tokenizer._tokenizer.model, "continuing_subword_prefix", None) or "##"
    return [
        hf_model.config.id2label[i]
        for i, piece, is_special in zip(ids, pieces, special)
        if not is_special and not piece.startswith(prefix)
    ]


def has_invalid_i_start(tags: List[str]) -> bool:
    """Whether an IOB2 `I-X` follows a tag other than `B-X`/`I-X`.

    The HF pipeline starts an entity there; constrained Viterbi instead picks
    the best valid sequence, so the two may differ on such a sentence.
    """
    return any(tag.startswith("I-") and previous[2:] != tag[2:] for previous, tag in zip(["O"] + tags[:-1], tags))
