"""Training batches sized by what the transformer sees: subwords, not spaCy tokens.

In noisy text the number of subwords per token varies a lot (URLs, hashtags,
emoji), so batching by token counts leaves much padding. This batcher measures
each text with the transformer's own tokenizer and hands the lengths to spaCy's
`minibatch_by_padded_size`, which groups similar lengths together.
"""

from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, List

from spacy.training.batchers import minibatch_by_padded_size
from spacy.util import registry


@registry.batchers("spacy_wnut.batch_by_subwords.v1")
def configure_batch_by_subwords(
    tokenizer: str, size: int, buffer: int = 256, discard_oversize: bool = False
) -> Callable[[Iterable[Any]], Iterator[List[Any]]]:
    """Batches of at most `size` padded subwords (longest item x items).

    tokenizer: HF name or directory of the transformer's tokenizer, or an
        offline backbone name (usually `${paths.transformer}`); loaded on the first batch.
    buffer: items sorted by length together; larger means less padding but
        less shuffled batches.
    """

    def batch(items: Iterable[Any]) -> Iterator[List[Any]]:
        measure = _subword_counter(tokenizer)
        return minibatch_by_padded_size(
            items,
            size=size,
            buffer=buffer,
            discard_oversize=discard_oversize,
            get_length=lambda item: measure(getattr(item, "predicted", item).text),
        )

    return batch


@lru_cache(maxsize=4)
def _subword_counter(tokenizer: str) -> Callable[[str], int]:
    from transformers import AutoTokenizer

    from ..ml.backbones import resolve_backbone
    from ..ml.tokenization import NO_LIMIT, SubwordTokenizer

    subwords = SubwordTokenizer.from_hf(AutoTokenizer.from_pretrained(resolve_backbone(tokenizer)), NO_LIMIT)

    @lru_cache(maxsize=1_000_000)
    def count(text: str) -> int:
        return subwords.count([text], special_tokens=True)[0]

    return count
