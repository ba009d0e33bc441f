"""`spacy_wnut.SoftTargetCorpus.v1`: `spacy.Corpus.v1` for DocBins that carry a teacher's soft targets.

spaCy's corpus cuts a doc into sentences with `Span.as_doc`, which drops `doc.user_data`, where the
targets live (`gold_preproc`, and docs longer than `max_length`); this reader gives each sentence
its share of them. Everything else is spaCy's `Corpus`.
"""

from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import registry

from ..pipeline.soft_targets import sentence_doc


@registry.readers("spacy_wnut.SoftTargetCorpus.v1")
def create_soft_target_corpus(
    path: Optional[Path],
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
    shuffle: bool = False,
) -> "SoftTargetCorpus":
    """Read the DocBins `spacy wnut distill` wrote (soft targets kept through sentence splitting).

    path (Path): a `.spacy` file or a directory of them.
    gold_preproc (bool), max_length (int), limit (int), augmenter (Callable), shuffle (bool):
        as for `spacy.Corpus.v1`. Docs an augmenter makes keep no targets (they train on gold alone).
    RETURNS (SoftTargetCorpus): the corpus.
    """
    if path is None:
        raise ValueError("spacy_wnut.SoftTargetCorpus.v1 needs a path (the soft targets `spacy wnut distill` wrote)")
    return SoftTargetCorpus(
        path, gold_preproc=gold_preproc, max_length=max_length, limit=limit, augmenter=augmenter, shuffle=shuffle
    )


class SoftTargetCorpus(Corpus):
    """A `spacy.training.Corpus` whose sentence docs keep their share of the soft targets."""

    def make_examples(self, nlp: Language, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        """As `Corpus.make_examples`, keeping targets on the sentences of docs over `max_length`."""
        for reference in reference_docs:
            if len(reference) == 0:
                continue
            if self.max_length == 0 or len(reference) < self.max_length:
                yield self._make_example(nlp, reference, False)
            elif reference.has_annotation("SENT_START"):
                for sent in reference.sents:
                    if 0 < len(sent) < self.max_length:
                        yield self._make_example(nlp, sentence_doc(sent), False)

    def make_examples_gold_preproc(self, nlp: Language, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        """As `Corpus.make_examples_gold_preproc`, keeping each sentence's targets."""
        for reference in reference_docs:
            if reference.has_annotation("SENT_START"):
                sentences = [sentence_doc(sent) for sent in reference.sents]
            else:
                sentences = [reference]
            for sentence in sentences:
                example = self._make_example(nlp, sentence, True)
                if len(example.x):
                    yield example
