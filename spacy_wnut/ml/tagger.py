"""`spacy_wnut.SubwordTagger`: a Hugging Face encoder (`spacy_wnut.HFEncoder.v1`) with a
token-classification head on every subword, trainable by `spacy train`.

The encoder layer (`hf_encoder.py`) imports torch and transformers only when
it is initialised or loaded (training needs `[train]`); what is shared with
the engines and the run-time pipeline is in `encoding` and `head`.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Linear, Model
from thinc.types import Floats2d

from .encoding import encode_for
from .features import N_CASINGS
from .head import SubwordScores, scores_from_hidden
from .hf_encoder import check_encoder, encoder_model


@registry.architectures("spacy_wnut.SubwordTagger.v1")
def build_subword_tagger(
    transformer: Model,
    dropout: float = 0.1,
    freeze_embeddings: bool = False,
    casing_features: bool = False,
    nO: Optional[int] = None,
) -> Model[List[Doc], SubwordScores]:
    """A HF encoder + dropout + linear head scoring every subword.

    transformer: the encoder layer, `spacy_wnut.HFEncoder.v1`.
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
    check_encoder(transformer)
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
    transformer.initialize()
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
    encoder = encoder_model(model.get_ref("transformer"))
    if model.attrs["freeze_embeddings"] and encoder is not None:
        # The shim only updates parameters that received a gradient.
        encoder.get_input_embeddings().weight.requires_grad_(False)


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[SubwordScores, Callable[[Floats2d], List[Doc]]]:
    transformer = model.get_ref("transformer")
    if not any(len(doc) for doc in docs):
        return SubwordScores.empty(docs, model.get_dim("nO")), lambda d_scores: docs
    encoded = encode_for(model, docs)
    hidden, backprop_encoder = transformer(encoded, is_train)
    scores, backprop_scores = scores_from_hidden(model, docs, encoded, hidden, is_train)
    output = SubwordScores(
        scores,
        encoded.align,
        encoded.doc_lengths,
        encoded.window_length,
        cut_subwords=encoded.cut_subwords,
        encoder_output=(encoded, hidden),
    )

    def backprop(d_scores: Floats2d) -> List[Doc]:
        backprop_encoder(backprop_scores(d_scores))
        return docs

    return output, backprop
