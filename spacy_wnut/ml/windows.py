"""Windows of spaCy tokens that the encoder reads: overlapping strided spans.

`strided_spans` gives exactly the windows of spacy-transformers'
`get_strided_spans` (pipelines of spacy-wnut 0.3 and earlier were trained on
them). Span getters live in spaCy's `span_getters` registry, which
spacy-transformers created; spacy-wnut creates it where that is not installed
(the same catalogue, entry point group `spacy_span_getters`).
"""

from functools import partial
from typing import Callable, Iterable, List

import catalogue
from spacy.tokens import Doc, Span
from spacy.util import registry

from ..errors import ConfigError

if not hasattr(registry, "span_getters"):
    registry.span_getters = catalogue.create("spacy", "span_getters", entry_points=True)  # type: ignore[attr-defined]


def check_windows(window: int, stride: int) -> None:
    """Raise `ConfigError` unless `window >= 1` and `window // 2 <= stride <= window`."""
    if window < 1 or not (window // 2 <= stride <= window):
        raise ConfigError(
            f"strided_spans: need window >= 1 and window // 2 <= stride <= window, got window={window}, stride={stride}"
        )


def strided_spans(docs: Iterable[Doc], window: int, stride: int) -> List[List[Span]]:
    """Windows of `window` tokens starting every `stride` tokens; the last one reaches the doc's end.

    docs (Iterable[Doc]): the docs.
    window (int): tokens per window.
    stride (int): tokens between window starts.
    RETURNS (List[List[Span]]): the windows of each doc (none for an empty doc).
    """
    spans: List[List[Span]] = []
    for doc in docs:
        start = 0
        spans.append([])
        for _ in range(len(doc) // stride):
            spans[-1].append(doc[start : start + window])
            if start + window >= len(doc):
                break
            start += stride
        else:
            if start < len(doc):
                spans[-1].append(doc[start:])
    return spans


def configure_strided_spans(window: int, stride: int) -> Callable[[Iterable[Doc]], List[List[Span]]]:
    """`spacy_wnut.strided_spans.v1` (a spacy-transformers span getter, by entry point): validated windows.

    A window whose subwords do not fit the encoder is cut into pieces that do
    (`encoding.encode_docs`), so `window` is an upper bound.
    """
    check_windows(window, stride)
    return partial(strided_spans, window=window, stride=stride)
