"""`spacy_wnut.SubwordTagger`: a Hugging Face encoder (spacy-transformers' `TransformerModel`) with a
token-classification head on every subword, trainable by `spacy train`.

The encoder and its tokenizer come from spacy-transformers, which this module
imports only when a model is initialised or run (training needs `[train]`);
what is shared with the engines and the run-time pipeline is in `encoding`
and `head`.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Linear, Model
from thinc.types import Floats2d

from .backbones import resolve_backbone
from .encoding import EncodedBatch, encode_for
from .features import N_CASINGS
from .head import SubwordScores, scores_from_hidden


@registry.architectures("spacy_wnut.SubwordTagger.v1")
def build_subword_tagger(
    transformer: Model,
    dropout: float = 0.1,
    freeze_embeddings: bool = False,
    casing_features: bool = False,
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """A HF encoder + dropout + linear head scoring every subword.

    transformer: e.g. `spacy-transformers.TransformerModel.v3`.
    dropout: before the head, as in HF's token-classification models.
    freeze_embeddings: keep the encoder's input (word piece) embeddings fixed
        during training; they are half of a small encoder's weights.
    casing_features: add a learned per-tag bias for the casing of the spaCy
        token each subword belongs to (lower, Title, UPPER, other). Uncased
        encoders lose this signal; a checkpoint exported to HF cannot hold it.
    nO: number of tags; set by the component at `initialize`.
    """
    return build_subword_tagger_v2(transformer, dropout, freeze_embeddings, casing_features, None, nO)


@registry.architectures("spacy_wnut.SubwordTagger.v2")
def build_subword_tagger_v2(
    transformer: Model,
    dropout: float = 0.1,
    freeze_embeddings: bool = False,
    casing_features: bool = False,
    token_features: Optional[Model[List[Doc], List[Floats2d]]] = None,
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """`SubwordTagger.v1` plus optional token features beside the encoder.

    token_features: a spaCy-style tok2vec (e.g. `spacy_wnut.TokenFeatures.v1`)
        whose vector for each spaCy token is joined to the encoder's row of
        every subword of that token, before dropout and the head. It sees what
        an uncased encoder cannot (shape, casing, affixes). A checkpoint
        exported to HF cannot hold it.
    """
    head = Linear(nO=nO)
    layers = [transformer, Dropout(dropout), head]
    refs = {"transformer": transformer, "output_layer": head}
    if token_features is not None:
        layers.append(token_features)
        refs["token_features"] = token_features
    return Model(
        "subword_tagger",
        forward,
        init=init,
        layers=layers,
        refs=refs,
        dims={"nO": nO},
        params={"casing_W": None} if casing_features else {},
        attrs={"freeze_embeddings": freeze_embeddings, "casing_features": casing_features},
    )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    transformer = model.get_ref("transformer")
    head = model.get_ref("output_layer")
    if not transformer.attrs["has_transformer"]:
        transformer.attrs["name"] = resolve_backbone(transformer.attrs["name"])
    transformer.initialize(X=X)
    apply_frozen_embeddings(model)
    width = transformer.get_dim("nO")
    if model.has_ref("token_features"):
        features = model.get_ref("token_features")
        features.initialize(X=X)
        width += features.get_dim("nO")
    head.set_dim("nI", width, force=True)
    if model.has_dim("nO"):
        head.set_dim("nO", model.get_dim("nO"), force=True)
    head.initialize()
    if model.attrs["casing_features"]:
        model.set_param("casing_W", model.ops.alloc2f(N_CASINGS, head.get_dim("nO")))


def apply_frozen_embeddings(model: Model) -> None:
    """Keep the encoder's input embeddings out of training if the model says so (after init or loading)."""
    encoder = model.get_ref("transformer").transformer
    if model.attrs["freeze_embeddings"] and encoder is not None:
        # The shim only updates parameters that received a gradient.
        encoder.get_input_embeddings().weight.requires_grad_(False)


# spacy-transformers reloads a saved encoder's config through srsly's JSON writer, which keeps 10
# decimals: `layer_norm_eps = 1e-12` (BERT, MiniLM, MPNet's default) comes back as 0.0. A LayerNorm
# over a constant row then divides 0 by 0: MPNet's padding rows (zero word and position embeddings)
# turn into NaN, which attention spreads over every row of the batch. The component keeps the exact
# value as text in its cfg (JSON keeps text exactly) and puts it back after loading.
LAYER_NORM_EPS = "layer_norm_eps"


def encoder_layer_norm_eps(model: Model) -> Optional[str]:
    """The encoder's `layer_norm_eps` as exact text (`repr`), or None where its config has none."""
    config = getattr(model.get_ref("transformer").transformer, "config", None)
    eps = getattr(config, LAYER_NORM_EPS, None)
    return repr(float(eps)) if isinstance(eps, (int, float)) else None


def restore_layer_norm_eps(model: Model, exact: Optional[str]) -> int:
    """Put the exact `layer_norm_eps` back into a reloaded encoder's config and LayerNorms; RETURNS how many changed.

    Only LayerNorms built from the config (whose eps equals the reloaded config's) are changed.
    """
    import torch

    encoder = model.get_ref("transformer").transformer
    loaded = getattr(getattr(encoder, "config", None), LAYER_NORM_EPS, None)
    if exact is None or loaded is None or float(exact) == loaded:
        return 0
    setattr(encoder.config, LAYER_NORM_EPS, float(exact))
    changed = 0
    for module in encoder.modules():
        if isinstance(module, torch.nn.LayerNorm) and module.eps == loaded:
            module.eps = float(exact)
            changed += 1
    return changed


def wordpiece_batch(encoded: EncodedBatch, tokenizer=None):
    """The batch as spacy-transformers' `WordpieceBatch` (subword strings only when a HF tokenizer is given)."""
    from spacy_transformers.data_classes import WordpieceBatch

    if encoded.strings is None and tokenizer is not None:
        encoded.strings = [tokenizer.convert_ids_to_tokens(row) for row in encoded.input_ids.tolist()]
    strings = encoded.strings if encoded.strings is not None else [[] for _ in range(len(encoded.input_ids))]
    return WordpieceBatch(
        strings=strings,
        input_ids=encoded.input_ids,
        attention_mask=encoded.attention_mask,
        lengths=encoded.attention_mask.sum(axis=1).tolist(),
        token_type_ids=encoded.token_type_ids,
    )


def _trf_batch(encoded: EncodedBatch, tokenizer, model_output):
    from spacy_transformers.data_classes import FullTransformerBatch

    return FullTransformerBatch(
        spans=encoded.spans,
        wordpieces=wordpiece_batch(encoded, tokenizer),
        model_output=model_output,
        align=encoded.align,
    )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[SubwordScores, Callable[[Floats2d], List[Doc]]]:
    from thinc.api import torch2xp, xp2torch
    from transformers.utils import ModelOutput

    transformer = model.get_ref("transformer")
    if not any(len(doc) for doc in docs):
        return SubwordScores.empty(docs, model.get_dim("nO")), lambda d_scores: docs
    encoded = encode_for(model, docs)
    encoder = transformer.layers[0]  # spacy-transformers' HFWrapper: PyTorch via Thinc
    model_output, backprop_encoder = encoder(wordpiece_batch(encoded), is_train)
    hidden = model_output.last_hidden_state
    n_windows, window_length, width = hidden.shape
    scores, backprop_scores = scores_from_hidden(model, docs, encoded, torch2xp(hidden).reshape(-1, width), is_train)
    output = SubwordScores(
        scores,
        encoded.align,
        encoded.doc_lengths,
        window_length,
        _trf_batch(encoded, transformer.tokenizer, model_output),
        encoded.cut_subwords,
    )

    def backprop(d_scores: Floats2d) -> List[Doc]:
        d_hidden = backprop_scores(d_scores)
        backprop_encoder(ModelOutput(last_hidden_state=xp2torch(d_hidden.reshape(n_windows, window_length, width))))
        return docs

    return output, backprop
