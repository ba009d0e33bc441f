"""Tag schemes of a token-classification head, and how they map onto the BIO tags we decode.

A head trained here predicts IOB2 tags (`O, B-x, I-x, ...`). A head imported
from a Hugging Face checkpoint predicts whatever its `id2label` says: IOB2,
IOB1, BIOES, BILOU or plain labels (`PER`). Decoding always runs on IOB2:
`to_bio` is a matrix that turns the head's tag probabilities into IOB2
scores, and `encode` turns spaCy's BILUO gold tags into the head's tag ids so
that an imported head can be fine-tuned in its own scheme.
"""

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy

from ..data.conll import split_tag
from ..errors import ConfigError

# Decoding prior for a token with no subword (whitespace, characters the
# tokenizer drops): it may continue an entity across itself, never start one.
_NO_ROWS_LOG_PROB = {"O": 0.0, "I": numpy.log(0.5), "B": -1e4}


@dataclass(frozen=True)
class TagScheme:
    """BIO tags over a fixed tuple of entity labels."""

    labels: Tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def tags(self) -> List[str]:
        """Tag names in id order: O, then B-/I- per label."""
        return ["O"] + [f"{p}-{label}" for label in self.labels for p in ("B", "I")]

    @property
    def n_tags(self) -> int:
        return 1 + 2 * len(self.labels)

    def is_inside(self) -> numpy.ndarray:
        """Boolean mask over tag ids: True for I- tags."""
        ids = numpy.arange(self.n_tags)
        return (ids > 0) & (ids % 2 == 0)

    def allowed_transitions(self) -> numpy.ndarray:
        """(n_tags, n_tags) mask: `allowed[prev, cur]` is False only for I-X after anything but B-X/I-X."""
        return _allowed_transitions(self.labels)

    def no_rows_prior(self) -> numpy.ndarray:
        """Log-probabilities for a token with no subword: O or I- (continuing), never B-."""
        return _no_rows_prior(self.labels)


@lru_cache(maxsize=64)
def _allowed_transitions(labels: Tuple[str, ...]) -> numpy.ndarray:
    scheme = TagScheme(labels)
    ids = numpy.arange(scheme.n_tags)
    label = (ids - 1) // 2
    inside = scheme.is_inside()
    same_label = (label[:, None] == label[None, :]) & (ids[:, None] > 0)
    allowed = ~inside[None, :] | same_label
    allowed.flags.writeable = False  # shared by every caller
    return allowed


@lru_cache(maxsize=64)
def _no_rows_prior(labels: Tuple[str, ...]) -> numpy.ndarray:
    prior = numpy.array([_NO_ROWS_LOG_PROB[tag[0]] for tag in TagScheme(labels).tags], dtype="f")
    prior.flags.writeable = False
    return prior


SCHEMES = ("auto", "IOB2", "IOB1", "BIOES", "BILOU", "plain")
_PREFIXES = {"IOB2": "BI", "IOB1": "BI", "BIOES": "BIES", "BILOU": "BILU"}
_PREFIXED = re.compile(r"^([BIESLU])-(.+)$")
# Where a head tag may either start or continue an entity (IOB1's I-, plain
# labels), continuing wins over starting a new one when both are allowed,
# as in the transformers pipeline's entity grouping.
_START_WEIGHT = 1.0 - 1e-3
# A label that looks like a tag of some scheme (`X-ORG`, `S_PER`): read as plain, but worth a warning.
_SCHEME_LIKE = re.compile(r"^[A-Za-z]{1,2}[-_].+$")


class GuessedSchemeWarning(UserWarning):
    """A checkpoint's tag scheme was guessed from labels that may mean something else."""


@dataclass(frozen=True)
class HeadScheme:
    """The tags a head predicts (in head row order) and their scheme."""

    tags: Tuple[str, ...]
    kind: str

    @classmethod
    def iob2(cls, labels: Sequence[str]) -> "HeadScheme":
        """The head this package trains: `TagScheme(labels).tags`."""
        return cls(tuple(TagScheme(tuple(labels)).tags), "IOB2")

    @classmethod
    def from_id2label(cls, id2label: Mapping[int, str], kind: str = "auto") -> "HeadScheme":
        """Read a HF config's `id2label`; `kind="auto"` tells IOB2/BIOES/BILOU/plain by the prefixes.

        IOB1 uses the same prefixes as IOB2 and must be named. Raises
        ValueError naming every label that does not fit the scheme.
        """
        if kind not in SCHEMES:
            raise ConfigError(f"unknown tag scheme {kind!r}: use one of {SCHEMES}")
        tags = tuple(id2label[i] for i in sorted(int(k) for k in id2label))
        if "O" not in tags:
            raise ConfigError(f"the checkpoint's labels have no 'O' tag: {list(tags)}")
        found = {m.group(1) for m in map(_PREFIXED.match, tags) if m}
        if kind == "auto":
            kind = _guess_kind(found)
            odd = [tag for tag in tags if tag != "O" and _SCHEME_LIKE.match(tag) and not _PREFIXED.match(tag)]
            if kind == "plain" and odd:
                warnings.warn(
                    f"the labels {odd} look like tags of a scheme other than IOB2, IOB1, BIOES or BILOU; they are "
                    "read as plain labels (each one entity type, which a token either starts or continues); "
                    "name the scheme with --scheme (checkpoint_scheme) if that is wrong",
                    GuessedSchemeWarning,
                    stacklevel=2,
                )
        allowed = _PREFIXES.get(kind, "")
        bad = [
            tag
            for tag in tags
            if tag != "O"
            and (
                (kind == "plain") == bool(_PREFIXED.match(tag))
                or (kind != "plain" and _PREFIXED.match(tag).group(1) not in allowed)
            )
        ]
        if bad:
            raise ConfigError(
                f"cannot map the checkpoint's labels {bad} onto scheme {kind} "
                f"(all labels: {list(tags)}); name the scheme with `checkpoint_scheme`"
            )
        if len(set(tags)) != len(tags):
            raise ConfigError(f"the checkpoint's labels repeat: {list(tags)}")
        return cls(tags, kind)

    @property
    def labels(self) -> Tuple[str, ...]:
        """Entity labels, in order of first appearance among the tags."""
        seen: Dict[str, None] = {}
        for tag in self.tags:
            if tag != "O":
                seen.setdefault(_split(tag, self.kind)[1], None)
        return tuple(seen)

    @property
    def bio(self) -> TagScheme:
        """The IOB2 scheme decoding runs on."""
        return TagScheme(self.labels)

    def is_bio(self) -> bool:
        """True when the head's tags are exactly the IOB2 decoding tags (no mapping needed)."""
        return self.kind == "IOB2" and list(self.tags) == self.bio.tags

    def to_bio(self) -> numpy.ndarray:
        """(n_head_tags, n_bio_tags) weights: IOB2 scores = head probabilities @ this."""
        bio = self.bio
        column = {tag: i for i, tag in enumerate(bio.tags)}
        matrix = numpy.zeros((len(self.tags), bio.n_tags), dtype="f")
        for row, tag in enumerate(self.tags):
            if tag == "O":
                matrix[row, 0] = 1.0
                continue
            prefix, label = _split(tag, self.kind)
            if prefix in ("B", "S", "U"):
                matrix[row, column[f"B-{label}"]] = 1.0
            elif prefix in ("E", "L") or (prefix == "I" and self.kind in ("IOB2", "BIOES", "BILOU")):
                matrix[row, column[f"I-{label}"]] = 1.0
            else:  # IOB1 I- or a plain label: starts or continues an entity
                matrix[row, column[f"I-{label}"]] = 1.0
                matrix[row, column[f"B-{label}"]] = _START_WEIGHT
        return matrix

    def encode(self, biluo: Sequence[Optional[str]]) -> numpy.ndarray:
        """spaCy BILUO gold tags (None or '-' unknown) to head tag ids, -1 where unknown or unmappable."""
        index = {tag: i for i, tag in enumerate(self.tags)}
        ids = numpy.full(len(biluo), -1, dtype="i")
        previous: Optional[str] = None
        for i, tag in enumerate(biluo):
            if tag in (None, "", "-"):
                previous = None
                continue
            if tag == "O":
                ids[i] = index["O"]
                previous = tag
                continue
            prefix, label = split_tag(tag)
            ids[i] = index.get(self._head_tag(prefix, label, previous), -1)
            previous = tag
        return ids

    def _head_tag(self, prefix: str, label: str, previous: Optional[str]) -> str:
        if self.kind == "plain":
            return label
        if self.kind == "BILOU":
            return f"{prefix}-{label}"
        if self.kind == "BIOES":
            return f"{dict(U='S', L='E').get(prefix, prefix)}-{label}"
        starts = prefix in ("B", "U")
        if self.kind == "IOB1":
            after_same = previous is not None and previous[:1] in ("L", "U") and previous[2:] == label
            return f"{'B' if starts and after_same else 'I'}-{label}"
        return f"{'B' if starts else 'I'}-{label}"


def _guess_kind(prefixes: set) -> str:
    if not prefixes:
        return "plain"
    for kind in ("IOB2", "BIOES", "BILOU"):
        if prefixes <= set(_PREFIXES[kind]) and (kind == "IOB2" or prefixes - set("BI")):
            return kind
    raise ConfigError(
        f"the checkpoint's tag prefixes {sorted(prefixes)} fit no scheme (IOB: B I; BIOES: B I E S; BILOU: B I L U)"
    )


def _split(tag: str, kind: str) -> Tuple[str, str]:
    if kind == "plain":
        return "", tag
    prefix, label = split_tag(tag)
    return prefix, label or ""
