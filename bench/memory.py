"""Peak RSS while `nlp.pipe` streams many docs: memory must stay flat.

Docs hold no transformer tensors after `wnut_ner` has run (unless
`store_trf_data` is set), so RSS after warm-up should not grow with the number
of docs. Texts are the sentences of a DocBin, cycled; docs are discarded as
they come out, as a streaming user would.

    python bench/memory.py training/model-best corpus/test.spacy --docs 100000
"""

import argparse
import itertools
import resource
import time
from pathlib import Path
from typing import Iterator

import spacy
from spacy.tokens import DocBin


def current_rss_mb() -> float:
    """Resident set size now, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cycled_texts(path: str, vocab, n_docs: int) -> Iterator[str]:
    texts = [doc.text for doc in DocBin().from_disk(path).get_docs(vocab)]
    return itertools.islice(itertools.cycle(texts), n_docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="trained pipeline directory")
    parser.add_argument("data", help=".spacy file whose texts are streamed (cycled)")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--every", type=int, default=10_000, help="report every N docs")
    args = parser.parse_args()

    nlp = spacy.load(args.model)
    print(f"loaded: RSS {current_rss_mb():.0f} MB")
    print(f"{'docs':>8} {'words':>9} {'RSS MB':>8} {'peak MB':>8} {'words/s':>8}")
    start = time.perf_counter()
    words = ents = 0
    first_report = None
    for i, doc in enumerate(nlp.pipe(cycled_texts(args.data, nlp.vocab, args.docs), batch_size=args.batch_size), 1):
        words += len(doc)
        ents += len(doc.ents)
        if i % args.every == 0 or i == args.docs:
            rss = current_rss_mb()
            first_report = first_report or rss
            rate = words / (time.perf_counter() - start)
            print(f"{i:>8} {words:>9} {rss:>8.0f} {peak_rss_mb():>8.0f} {rate:>8.0f}", flush=True)
    print(
        f"entities: {ents}; RSS growth after the first report: {current_rss_mb() - first_report:+.0f} MB; "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
