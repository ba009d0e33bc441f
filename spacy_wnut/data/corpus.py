"""Gold corpora: reading a DocBin file or directory into `Example`s, checked before any work is done,
and the gold labels a pipeline cannot predict (each one a miss, warned about by name)."""

import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Union

from spacy.language import Language
from spacy.training import Corpus, Example

from ..errors import InputError
from .convert import docbin_files


class UnknownLabelsWarning(UserWarning):
    """Gold entities of types the pipeline cannot predict: each one counts as a miss."""


def read_examples(
    nlp: Language, path: Union[str, Path], *, gold_preproc: bool = True, require_entities: bool = True
) -> List[Example]:
    """Gold examples from a DocBin file or a directory of them, checked before any work is done.

    Raises `InputError` naming the file for an unreadable DocBin, and the path
    for an empty directory, a corpus without documents, or (with
    `require_entities`) one whose documents carry no entity annotation.
    """
    examples: List[Example] = []
    for file in docbin_files(path):
        try:
            examples.extend(Corpus(file, gold_preproc=gold_preproc)(nlp))
        except Exception as err:  # spaCy's own message names no file (E1014, msgpack errors)
            raise InputError(str(file), f"not a readable spaCy DocBin ({type(err).__name__}: {err})") from None
    if not examples:
        raise InputError(str(path), "holds no documents")
    if require_entities and not any(eg.reference.has_annotation("ENT_IOB") for eg in examples):
        raise InputError(str(path), "no document has entity annotation: there is nothing to score against")
    return examples


def predicted_labels(nlp: Language) -> Optional[set]:
    """The entity labels the pipeline's entity components can predict (None if it cannot tell)."""
    labels: set = set()
    found = False
    for name, pipe in nlp.pipeline:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns and hasattr(pipe, "labels"):
            labels.update(pipe.labels)
            found = True
    return labels if found else None


def unknown_gold_labels(nlp: Language, examples: Iterable[Example]) -> List[str]:
    """Gold entity labels that no entity component of the pipeline predicts."""
    labels = predicted_labels(nlp)
    if labels is None:
        return []
    gold = {ent.label_ for eg in examples for ent in eg.reference.ents}
    return sorted(gold - labels)


def warn_unknown_gold_labels(nlp: Language, examples: Iterable[Example], where: Union[str, Path]) -> List[str]:
    """Warn about (and return) gold labels the pipeline cannot predict: they count as misses."""
    unknown = unknown_gold_labels(nlp, examples)
    if unknown:
        warnings.warn(
            f"{where}: gold entity labels the pipeline does not predict: {', '.join(unknown)} (every one is a "
            f"miss; it predicts {', '.join(sorted(predicted_labels(nlp) or ()))})",
            UnknownLabelsWarning,
            stacklevel=2,
        )
    return unknown


def check_corpus(path: Union[str, Path], *, gold_preproc: bool = True) -> int:
    """Read a gold corpus before any pipeline is loaded, raising `read_examples`' errors; returns its size."""
    import spacy

    return len(read_examples(spacy.blank("en"), path, gold_preproc=gold_preproc))
