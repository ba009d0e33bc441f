"""The Hugging Face token-classification recipe, on WNUT 17 DocBins, then served in spaCy.

The tutorial's recipe as written: words tokenised with `is_split_into_words`,
the label on each word's first subword and -100 on the rest,
`DataCollatorForTokenClassification`, `Trainer`, and a `compute_metrics` that
scores with `evaluate`'s seqeval (the copy packaged with spacy-wnut, loaded by
path: offline) to keep the epoch with the best dev F1. Because checkpoints move
both ways, this is also the route for training at scale (`accelerate launch
bench/hf_recipe.py ...` or `torchrun` for DDP on many GPUs) and serving in a
spaCy pipeline:

    python bench/hf_recipe.py MODEL corpus/train.spacy corpus/dev.spacy training/hf
    python -m spacy_wnut import-hf training/hf/best training/hf-spacy
"""

import argparse
import json
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
from spacy.tokens import DocBin

from spacy_wnut.data.convert import doc_to_iob
from spacy_wnut.pipeline.schemes import TagScheme
from spacy_wnut.training.hf_metric import compute_metrics

# The tutorial's hyper-parameters (lr 2e-5, batch 16, 2 epochs, weight decay 0.01).
TUTORIAL = {"learning_rate": 2e-5, "epochs": 2.0, "batch_size": 16, "weight_decay": 0.01}


def read_docbin(path: Path) -> Tuple[List[List[str]], List[List[str]]]:
    """Words and IOB2 tags of each doc of a DocBin."""
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return [[t.text for t in doc] for doc in docs], [doc_to_iob(doc) for doc in docs]


def tag_scheme(tag_lists: Sequence[Sequence[str]]) -> TagScheme:
    """IOB2 tags over the labels found (sorted), in this package's tag order."""
    labels = sorted({tag.split("-", 1)[1] for tags in tag_lists for tag in tags if tag != "O"})
    return TagScheme(tuple(labels))


def encode(tokenizer, words: List[List[str]], tags: List[List[str]], label2id: Dict[str, int]):
    """The tutorial's `tokenize_and_align_labels`: first subword labelled, the rest -100."""
    encoded = tokenizer(words, truncation=True, is_split_into_words=True)
    labels = []
    for i, word_tags in enumerate(tags):
        previous = None
        row = []
        for word_id in encoded.word_ids(batch_index=i):
            row.append(-100 if word_id is None or word_id == previous else label2id[word_tags[word_id]])
            previous = word_id
        labels.append(row)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": row}
        for ids, mask, row in zip(encoded["input_ids"], encoded["attention_mask"], labels)
    ]


def train(
    model_name: str,
    train_path: Path,
    dev_path: Path,
    output: Path,
    *,
    learning_rate: float,
    epochs: float,
    batch_size: int,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    max_steps: int = -1,
    seed: int = 0,
) -> Dict:
    """Fine-tune with `Trainer`, keep the epoch with the best dev F1 in `output/best`; return figures."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    train_words, train_tags = read_docbin(train_path)
    dev_words, dev_tags = read_docbin(dev_path)
    scheme = tag_scheme(train_tags)
    id2label = dict(enumerate(scheme.tags))
    label2id = {tag: i for i, tag in id2label.items()}
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForTokenClassification.from_pretrained(model_name, id2label=id2label, label2id=label2id)

    args = TrainingArguments(
        output_dir=str(output / "checkpoints"),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="f1",
        report_to="none",
        seed=seed,
        use_cpu=True,
        disable_tqdm=False,
        logging_strategy="epoch",
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encode(tokenizer, train_words, train_tags, label2id),
        eval_dataset=encode(tokenizer, dev_words, dev_tags, label2id),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        # The tutorial's compute_metrics: argmax, -100 positions dropped, evaluate.load(seqeval_metric_path()).
        compute_metrics=compute_metrics(id2label),
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    dev = trainer.evaluate()
    trainer.save_model(str(output / "best"))
    tokenizer.save_pretrained(str(output / "best"))
    scores = {key: dev[f"eval_{key}"] for key in ("precision", "recall", "f1", "accuracy")}
    return {
        "train_seconds": seconds,
        "dev_f1_first_subword": dev["eval_f1"],
        "dev_scores_first_subword": scores,
        "checkpoint": str(output / "best"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="HF backbone: hub name or local directory")
    parser.add_argument("train", type=Path, help="train DocBin")
    parser.add_argument("dev", type=Path, help="dev DocBin (picks the best epoch)")
    parser.add_argument("output", type=Path, help="output directory; the checkpoint lands in OUTPUT/best")
    parser.add_argument("--learning-rate", type=float, default=TUTORIAL["learning_rate"])
    parser.add_argument("--epochs", type=float, default=TUTORIAL["epochs"])
    parser.add_argument("--batch-size", type=int, default=TUTORIAL["batch_size"])
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (smoke tests)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = train(
        args.model,
        args.train,
        args.dev,
        args.output,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        batch_size=args.batch_size,
        warmup_steps=args.warmup_steps,
        max_steps=args.max_steps,
        seed=args.seed,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
