"""Running an encoder on a batch in length-sorted chunks of a bounded number of padded subwords.

An `nlp.pipe` batch of 64 noisy tweets padded to its longest window is
about three quarters padding (a URL is dozens of subwords), and on a CPU one
call over a big padded batch is slower per text than calls over a few texts:
its activations no longer fit the caches. So an engine is run on the
batch's windows sorted by length, in chunks of at most `budget` padded
subwords (windows x the chunk's longest window), and the rows are put back
in place. Measured on MiniLM-L6, one thread, batches of 64 WNUT 17 test
sentences in input order (`bench/chunking.py`): 3.5x (torch) and 4.7x (onnx)
the texts/s of one padded call. The rows of real subwords are the ones the
whole batch gives (attention masks padding), up to float rounding; padded
rows are zeros.
"""

import dataclasses
from typing import Callable, List, Optional

import numpy

from .encoding import EncodedBatch

# Padded subwords per engine call, the best measured on 1 and 2 CPU threads (128-512 were within 10 %).
DEFAULT_BATCH_SUBWORDS = 256


def length_chunks(lengths: numpy.ndarray, budget: int) -> List[numpy.ndarray]:
    """Partition window indices, shortest first, into chunks of at most `budget` padded subwords.

    A chunk holds consecutive windows by length, so its cost is its size times
    its last (longest) window. A window longer than `budget` is a chunk alone.

    lengths (numpy.ndarray): the real subwords of each window.
    budget (int): the most padded subwords of a chunk (at least 1).
    RETURNS (List[numpy.ndarray]): index arrays that together hold each window once.
    """
    order = numpy.argsort(lengths, kind="stable")
    chunks: List[numpy.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or (end - start + 1) * int(lengths[order[end]]) > budget:
            chunks.append(order[start:end])
            start = end
    return chunks


def sub_batch(encoded: EncodedBatch, index: numpy.ndarray) -> EncodedBatch:
    """The windows `index` of a batch, padded to their own longest only (the engine's inputs)."""
    width = max(1, int(encoded.attention_mask[index].sum(axis=1).max()))
    token_types = None if encoded.token_type_ids is None else encoded.token_type_ids[index, :width]
    return dataclasses.replace(
        encoded,
        input_ids=encoded.input_ids[index, :width],
        attention_mask=encoded.attention_mask[index, :width],
        token_type_ids=token_types,
    )


def run_in_chunks(
    run: Callable[[EncodedBatch], numpy.ndarray], encoded: EncodedBatch, budget: Optional[int]
) -> numpy.ndarray:
    """An engine's `(n_rows, width)` rows of a batch, computed chunk by chunk (`length_chunks`).

    run (Callable): an engine: encoded batch -> `(windows x window_length, width)` rows.
    encoded (EncodedBatch): the batch, padded to its longest window.
    budget (Optional[int]): padded subwords per call; None, or a batch that fits, is one call.
    RETURNS (numpy.ndarray): rows laid out as one call over `encoded` gives them.
    """
    n_windows, length = encoded.input_ids.shape
    if budget is None or n_windows * length <= budget or n_windows == 1:
        return run(encoded)
    out: Optional[numpy.ndarray] = None
    for index in length_chunks(encoded.attention_mask.sum(axis=1), budget):
        chunk = sub_batch(encoded, index)
        rows = run(chunk)
        rows = rows.reshape(len(index), chunk.window_length, rows.shape[-1])
        if out is None:
            out = numpy.zeros((n_windows, length, rows.shape[-1]), dtype=rows.dtype)
        out[index, : chunk.window_length] = rows
    return out.reshape(n_windows * length, -1)
