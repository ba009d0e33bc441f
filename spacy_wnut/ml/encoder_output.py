"""What the encoder saw and gave for each doc: `doc._.trf_data` when a component sets `store_trf_data`.

spacy-wnut's own data class (spacy-transformers' `TransformerData` is not
used): the doc's padded subword windows, the encoder's last hidden state on
them, and which rows each spaCy token owns.
"""

from dataclasses import dataclass
from typing import List, Optional

import numpy
from spacy.tokens import Doc, Span
from thinc.types import Floats2d, Ragged

from .encoding import EncodedBatch

EXTENSION = "trf_data"


@dataclass
class DocEncoderOutput:
    """The encoder's view of one doc.

    spans (List[Span]): the doc's windows, in order.
    input_ids (numpy.ndarray): `(n_windows, window_length)` subword ids, padded.
    attention_mask (numpy.ndarray): `(n_windows, window_length)`, 1 on real subwords.
    hidden (Floats2d): `(n_windows * window_length, width)` last hidden state, one row per subword.
    align (Ragged): token i of the doc -> its rows of `hidden`.
    """

    spans: List[Span]
    input_ids: numpy.ndarray
    attention_mask: numpy.ndarray
    hidden: Floats2d
    align: Ragged

    @property
    def width(self) -> int:
        """The encoder's hidden size."""
        return int(self.hidden.shape[-1])


def install_extension() -> None:
    """Register `Doc._.trf_data` (default None) unless something registered it already."""
    if not Doc.has_extension(EXTENSION):
        Doc.set_extension(EXTENSION, default=None)


def split_by_doc(encoded: EncodedBatch, hidden: Floats2d) -> List[Optional[DocEncoderOutput]]:
    """Cut a batch's encoder output into each doc's share (None for a doc without tokens).

    Windows are in doc order (`encode_docs` keeps it), so doc i owns a
    contiguous run of windows and, through them, of rows.
    """
    length = encoded.window_length
    lengths = encoded.align.lengths
    token_starts = numpy.concatenate([[0], numpy.cumsum(encoded.doc_lengths)])
    row_starts = numpy.concatenate([[0], numpy.cumsum(lengths)])
    out: List[Optional[DocEncoderOutput]] = []
    first_window = 0
    for i, spans in enumerate(encoded.spans):
        if not spans:
            out.append(None)
            continue
        windows = slice(first_window, first_window + len(spans))
        t0, t1 = token_starts[i], token_starts[i + 1]
        data = numpy.asarray(encoded.align.data[row_starts[t0] : row_starts[t1]]) - first_window * length
        out.append(
            DocEncoderOutput(
                spans=list(spans),
                input_ids=encoded.input_ids[windows],
                attention_mask=encoded.attention_mask[windows],
                hidden=hidden[first_window * length : (first_window + len(spans)) * length],
                align=Ragged(data.astype("i"), numpy.asarray(lengths[t0:t1], dtype="i")),
            )
        )
        first_window += len(spans)
    return out
