"""What the benchmark measures the same way for every system: entity scores, words/s, peak RSS."""

import importlib.metadata
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import spacy
import torch
import transformers
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_wnut.tools.scoring import seqeval_scores

CharEntities = List[Tuple[int, int, str]]


def read_gold(path: Path, limit: int = 0) -> List[Doc]:
    """Gold docs of a DocBin (first `limit` if > 0)."""
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return docs[:limit] if limit else docs


def plain_copy(doc: Doc, vocab=None) -> Doc:
    """The doc's words and spaces only (no annotation), for a pipeline to predict on."""
    return Doc(vocab or doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def scores_from_char_entities(gold: Sequence[Doc], predicted: Sequence[CharEntities]) -> Dict:
    """seqeval P/R/F1 (overall and per type) of character-span predictions on the gold tokens.

    A predicted span is widened to the gold tokens it touches, as any system
    predicting on its own tokens must be scored against the gold ones.
    """
    examples = []
    for doc, entities in zip(gold, predicted):
        pred = plain_copy(doc)
        spans = []
        for start, end, label in sorted(entities):
            span = pred.char_span(start, end, label=label, alignment_mode="expand")
            if span is not None and not any(span.start < s.end and s.start < span.end for s in spans):
                spans.append(span)
        pred.ents = spans
        examples.append(Example(pred, doc))
    result = seqeval_scores(examples)
    return {
        "p": result["p"],
        "r": result["r"],
        "f": result["f"],
        "per_type_f": {label: row["f"] for label, row in result["per_type"].items()},
    }


def words_per_second(run: Callable[[int], object], n_words: int, batch_sizes: Sequence[int], repeats: int) -> Dict:
    """Median words/s of `run(batch_size)` over `repeats` timed runs after one warm-up, per batch size."""
    result = {}
    for batch_size in batch_sizes:
        run(batch_size)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(batch_size)
            times.append(time.perf_counter() - start)
        result[str(batch_size)] = n_words / statistics.median(times)
    return result


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_info() -> Dict:
    """CPU model, cores and library versions, for the results file."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "spacy": spacy.__version__,
        "spacy_wnut": importlib.metadata.version("spacy-wnut"),
    }
