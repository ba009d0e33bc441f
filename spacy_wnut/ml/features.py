"""What spaCy's tokens add beside the encoder: casing classes and token features, brought to the subword rows.

An uncased encoder (DistilBERT, MiniLM) never sees a token's shape: `Apple`,
`apple` and `APPLE` are one input. Two optional signals put it back, both
computed from spaCy's tokens and broadcast to each subword row of the token
through the same alignment (`TokenRowMap`): a learned per-tag casing bias, and
token features from spaCy's own layers (`spacy_wnut.TokenFeatures.v1`).
"""

from dataclasses import dataclass
from typing import List, Optional

import numpy
from spacy.ml.models.tok2vec import CharacterEmbed, MaxoutWindowEncoder, MultiHashEmbed, build_Tok2Vec_model
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Maxout, Model, Ops, chain, concatenate, with_array
from thinc.types import Floats2d, Ragged

from ..errors import ConfigError

# Casing classes of a token: 0 for rows of no token (special tokens, padding).
CASING_ATTRS = ["IS_TITLE", "IS_UPPER", "IS_LOWER"]
N_CASINGS = 5  # none, Title, UPPER, lower, other
# The optimizer's learning rate suits the encoder's weights; scaling these few
# biases lets Adam (whose steps do not depend on the gradient's scale) move
# them by whole logits within one fine-tuning run.
CASING_SCALE = 20.0
DEFAULT_ATTRS = ("NORM", "PREFIX", "SUFFIX", "SHAPE")
DEFAULT_ROWS = (5000, 1000, 2500, 1000)


@dataclass
class TokenRowMap:
    """Which spaCy token each subword row belongs to (-1: special tokens and padding).

    A row shared by two tokens (rare: a subword spanning a token boundary)
    belongs to the later one.
    """

    token_of_row: numpy.ndarray

    @classmethod
    def from_align(cls, align: Ragged, n_rows: int) -> "TokenRowMap":
        lengths = numpy.asarray(align.lengths)
        token_of_row = numpy.full((n_rows,), -1, dtype="i")
        token_of_row[numpy.asarray(align.dataXd).ravel()] = numpy.repeat(numpy.arange(len(lengths), dtype="i"), lengths)
        return cls(token_of_row)

    def from_tokens(self, ops: Ops, values: Floats2d) -> Floats2d:
        """Per-row copies of per-token `values` (zeros for rows of no token)."""
        has = self.token_of_row >= 0
        rows = ops.alloc2f(len(self.token_of_row), values.shape[1])
        rows[has] = values[self.token_of_row[has]]
        return rows

    def to_tokens(self, ops: Ops, d_rows: Floats2d, n_tokens: int) -> Floats2d:
        """The gradient of `from_tokens`: each token's rows summed."""
        has = self.token_of_row >= 0
        d_tokens = ops.alloc2f(n_tokens, d_rows.shape[1])
        ops.xp.add.at(d_tokens, self.token_of_row[has], d_rows[has])
        return d_tokens


def token_casings(docs: List[Doc]) -> numpy.ndarray:
    """Casing class per token of the docs (concatenated): 1 Title, 2 UPPER, 3 lower, 4 other."""
    flags = [doc.to_array(CASING_ATTRS).reshape(-1, 3) for doc in docs if len(doc)]
    if not flags:
        return numpy.zeros((0,), dtype="i")
    flags = numpy.concatenate(flags).astype(bool)
    # The first flag that holds wins ("I" is both Title and UPPER: Title).
    return numpy.where(flags.any(axis=1), flags.argmax(axis=1) + 1, 4).astype("i")


def row_casings(docs: List[Doc], rows: TokenRowMap) -> numpy.ndarray:
    """Casing class of the token each subword row belongs to (0 for rows of no token)."""
    casings = numpy.concatenate([[0], token_casings(docs)]).astype("i")
    return casings[rows.token_of_row + 1]


@registry.architectures("spacy_wnut.TokenFeatures.v1")
def build_token_features(
    width: int = 64,
    attrs: Optional[List[str]] = None,
    rows: Optional[List[int]] = None,
    window_size: int = 1,
    depth: int = 2,
    maxout_pieces: int = 3,
    character_embed: bool = False,
    learn_rate_scale: float = 1.0,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token vectors from the token's surface form, built from spaCy's own layers.

    `MultiHashEmbed` over `attrs` (default NORM, PREFIX, SUFFIX, SHAPE with
    5000, 1000, 2500, 1000 rows; case-sensitive PREFIX, SUFFIX and SHAPE see
    what an uncased encoder cannot), optionally with `CharacterEmbed` (the
    token's first and last 4 characters), then a `MaxoutWindowEncoder` of
    `depth` layers over `window_size` neighbours on each side.

    learn_rate_scale: these layers start from random weights while the
        encoder is pretrained; their updates use the optimizer's learning rate
        times this.
    """
    attrs = list(attrs) if attrs is not None else list(DEFAULT_ATTRS)
    rows = list(rows) if rows is not None else list(DEFAULT_ROWS[: len(attrs)])
    if len(rows) != len(attrs):
        raise ConfigError(f"TokenFeatures: give one number of rows per attribute, got attrs={attrs}, rows={rows}")
    if width < 1 or depth < 1 or window_size < 0:
        raise ConfigError(
            f"TokenFeatures: need width >= 1, depth >= 1, window_size >= 0; got {width}, {depth}, {window_size}"
        )
    if learn_rate_scale <= 0:
        raise ConfigError(f"TokenFeatures: learn_rate_scale must be positive, got {learn_rate_scale}")
    embed = MultiHashEmbed(width, attrs, rows, include_static_vectors=False)
    if character_embed:
        characters = CharacterEmbed(width, rows[0], nM=16, nC=8, include_static_vectors=False, feature="NORM")
        embed = chain(
            concatenate(embed, characters),
            with_array(Maxout(width, 2 * width, nP=maxout_pieces, normalize=True, dropout=0.0)),
        )
    model = build_Tok2Vec_model(embed, MaxoutWindowEncoder(width, window_size, maxout_pieces, depth))
    model.set_dim("nO", width)
    model.attrs["learn_rate_scale"] = float(learn_rate_scale)
    return model
