"""HF token-classification checkpoints into the component and back out, with `pipeline()` parity."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import fix_random_seed
from transformers import AutoModelForTokenClassification, BertForTokenClassification, BertTokenizerFast, pipeline

from spacy_wnut.tools.hf_checkpoint import export_hf, from_hf, pipeline_words_doc

from ..util import TRAIN_DATA, bench_module, ents_of, make_nlp, train_examples, wnut_command

has_invalid_i_start = bench_module("hf_parity").has_invalid_i_start
pipeline_word_tags = bench_module("hf_parity").pipeline_word_tags

TEXTS = [text for text, _ in TRAIN_DATA]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]
MORE_TEXTS = ["tom hanks and apple inc in new york", "game of thrones , the new apple", "watching tom"]


def make_checkpoint(tiny_transformer, path, tags, favour=None):
    """A tiny BertForTokenClassification with these tags; `favour` makes every token that tag."""
    torch.manual_seed(0)
    model = BertForTokenClassification.from_pretrained(
        tiny_transformer, id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)}
    )
    if favour is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.fill_(-10.0)
            model.classifier.bias[tags.index(favour)] = 10.0
    model.save_pretrained(path)
    BertTokenizerFast.from_pretrained(tiny_transformer).save_pretrained(path)
    return path


def hf_entities(checkpoint, texts):
    ner = pipeline("token-classification", model=str(checkpoint), aggregation_strategy="first", device="cpu")
    return [[(e["start"], e["end"], e["entity_group"]) for e in ner(text)] for text in texts]


@pytest.fixture(scope="module")
def exported(trained_nlp, tmp_path_factory):
    return export_hf(trained_nlp, tmp_path_factory.mktemp("exported"))


def test_export_writes_a_checkpoint_transformers_loads_unchanged(exported, trained_nlp):
    assert (exported / "model.safetensors").exists() and (exported / "tokenizer.json").exists()
    model = AutoModelForTokenClassification.from_pretrained(exported)
    tags = trained_nlp.get_pipe("wnut_ner").head.tags
    assert tuple(model.config.id2label.values()) == tags
    assert model.config.label2id == {tag: i for i, tag in enumerate(tags)}


def test_exported_checkpoint_predicts_as_the_component_in_the_hf_pipeline(exported, trained_nlp):
    """Equal entities, except where the pipeline's tags start with an invalid I- that Viterbi repairs."""
    texts = TEXTS + MORE_TEXTS
    assert hf_entities(exported, TEXTS) == GOLD
    hf_model = AutoModelForTokenClassification.from_pretrained(exported).eval()
    tokenizer = BertTokenizerFast.from_pretrained(exported)
    for text, theirs, ours in zip(texts, hf_entities(exported, texts), ents_of(trained_nlp.pipe(texts))):
        tags = pipeline_word_tags(hf_model, tokenizer, text)
        assert ours == theirs or has_invalid_i_start(tags), (text, tags, ours, theirs)


NOISY_TEXTS = MORE_TEXTS + [
    "@paulwalk it's #nyc time",
    "wolfgang \U0001f680 amadeus at apple.com !!",
    "a\u200bb \x07 new york  ",
    "",
    "tom-hanks , apple's new york-based game of thrones " * 3,
]


def test_argmax_decoder_on_pipeline_words_equals_the_hf_pipeline(tiny_transformer, tmp_path):
    """Same checkpoint, same words, argmax decoding: every entity as the pipeline has it.

    Random weights give noisy tags, with invalid I- starts the pipeline opens entities at.
    """
    tags = ["O"] + [f"{p}-{label}" for label in ("person", "creative-work", "location") for p in ("B", "I")]
    checkpoint = make_checkpoint(tiny_transformer, tmp_path, tags)
    nlp = from_hf(checkpoint, config={"decoder": "argmax"})
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    docs = [pipeline_words_doc(nlp.vocab, tokenizer, text) for text in NOISY_TEXTS]
    assert [doc.text for doc in docs] == NOISY_TEXTS
    theirs = hf_entities(checkpoint, NOISY_TEXTS)
    assert sum(map(len, theirs)) > 10
    assert ents_of(nlp.pipe(docs)) == theirs
    hf_model = AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
    assert any(has_invalid_i_start(pipeline_word_tags(hf_model, tokenizer, text)) for text in NOISY_TEXTS)


def test_bad_decoder_is_rejected(tiny_transformer):
    with pytest.raises(ValueError, match="decoder must be one of"):
        make_nlp(tiny_transformer, decoder="greedy")


def test_invalid_i_start_is_detected():
    assert has_invalid_i_start(["O", "I-PER"]) and has_invalid_i_start(["I-PER"])
    assert has_invalid_i_start(["B-LOC", "I-PER"])
    assert not has_invalid_i_start(["B-PER", "I-PER", "O", "B-creative-work", "I-creative-work"])


def test_import_of_export_gives_identical_predictions(exported, trained_nlp):
    imported = from_hf(exported)
    texts = TEXTS + MORE_TEXTS
    assert ents_of(imported.pipe(texts)) == ents_of(trained_nlp.pipe(texts))
    ours, theirs = (nlp.get_pipe("wnut_ner") for nlp in (imported, trained_nlp))
    docs = [trained_nlp.make_doc(t) for t in texts]
    assert numpy.allclose(
        ours.token_probs(ours.model.predict(docs)).probs,
        theirs.token_probs(theirs.model.predict(docs)).probs,
        atol=1e-5,
    )


def test_imported_pipeline_saves_and_loads_offline(exported, tmp_path, monkeypatch):
    checkpoint = shutil.copytree(exported, tmp_path / "checkpoint")
    nlp = from_hf(checkpoint)
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(checkpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = spacy.load(tmp_path / "pipeline")
    assert ents_of(loaded.pipe(TEXTS)) == ents_of(nlp.pipe(TEXTS))
    assert loaded.get_pipe("wnut_ner").head == nlp.get_pipe("wnut_ner").head


@pytest.mark.parametrize("kind", ["BIOES", "BILOU"])
def test_duplicated_rows_in_another_scheme_predict_the_same(trained_nlp, exported, tmp_path, kind):
    """An IOB2 head rewritten as BIOES/BILOU predicts the same.

    Each entity row is split in two (B into B and S/U, I into I and E/L) with
    bias - log 2, so each pair's probabilities sum to the original row's.
    """
    model = AutoModelForTokenClassification.from_pretrained(exported)
    start, end = ("S", "E") if kind == "BIOES" else ("U", "L")
    rows, tags = [], []
    for i, tag in model.config.id2label.items():
        rows.append(i)
        tags.append(tag)
        if tag != "O":
            rows.append(i)
            tags.append(f"{start if tag[0] == 'B' else end}-{tag[2:]}")
    new = BertForTokenClassification.from_pretrained(
        exported,
        id2label=dict(enumerate(tags)),
        label2id={t: i for i, t in enumerate(tags)},
        ignore_mismatched_sizes=True,
    )
    with torch.no_grad():
        new.classifier.weight.copy_(model.classifier.weight[rows])
        split = torch.tensor([0.0 if tag == "O" else numpy.log(2.0) for tag in tags])
        new.classifier.bias.copy_(model.classifier.bias[rows] - split)
    new.save_pretrained(tmp_path)
    BertTokenizerFast.from_pretrained(exported).save_pretrained(tmp_path)
    nlp = from_hf(tmp_path)
    assert nlp.get_pipe("wnut_ner").head.kind == kind
    texts = TEXTS + MORE_TEXTS
    assert ents_of(nlp.pipe(texts)) == ents_of(trained_nlp.pipe(texts))


@pytest.mark.parametrize(
    "tags,kind,favour,one_entity_per_token",
    [
        (["O", "PER"], "auto", "PER", False),
        (["O", "B-PER", "I-PER"], "IOB1", "I-PER", False),
        (["O", "B-PER", "I-PER"], "IOB1", "B-PER", True),
        (["O", "B-PER", "I-PER", "E-PER", "S-PER"], "auto", "S-PER", True),
    ],
)
def test_start_or_continue_semantics(tiny_transformer, tmp_path, tags, kind, favour, one_entity_per_token):
    nlp = from_hf(make_checkpoint(tiny_transformer, tmp_path, tags, favour), scheme=kind)
    doc = nlp("tom hanks in new york")
    expected = [(i, i + 1) for i in range(5)] if one_entity_per_token else [(0, 5)]
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(s, e, "PER") for s, e in expected]


def test_plain_labels_match_the_hf_pipeline(tiny_transformer, tmp_path):
    checkpoint = make_checkpoint(tiny_transformer, tmp_path, ["O", "PER"], "PER")
    assert ents_of(from_hf(checkpoint).pipe(MORE_TEXTS)) == hf_entities(checkpoint, MORE_TEXTS)


def test_imported_bioes_head_fine_tunes_in_its_own_scheme(tiny_transformer, tmp_path):
    tags = ["O"] + [f"{p}-{label}" for label in ("location", "person", "creative-work", "corporation") for p in "BIES"]
    nlp = from_hf(make_checkpoint(tiny_transformer, tmp_path, tags))
    fix_random_seed(0)
    examples = train_examples(nlp)
    optimizer = nlp.create_optimizer()
    optimizer.learn_rate = 1e-3
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    assert ents_of(nlp.pipe(TEXTS)) == GOLD


def test_unmappable_checkpoint_labels_are_named(tiny_transformer, tmp_path):
    checkpoint = make_checkpoint(tiny_transformer, tmp_path, ["O", "B-PER", "I-PER", "MISC"])
    with pytest.raises(ValueError, match=rf"{tmp_path}.*\['MISC'\]"):
        from_hf(checkpoint)


def test_labels_and_checkpoint_head_together_are_an_error(tiny_transformer, tmp_path):
    nlp = make_nlp(make_checkpoint(tiny_transformer, tmp_path, ["O", "B-PER", "I-PER"]))
    sample = [Example.from_dict(nlp.make_doc("x"), {})]
    with pytest.raises(ValueError, match="either `labels` or `checkpoint_head`"):
        nlp.get_pipe("wnut_ner").initialize(lambda: sample, labels=["PER"], checkpoint_head=True)


def test_checkpoint_head_from_the_config(tiny_transformer, tmp_path):
    """`[initialize.components.wnut_ner] checkpoint_head = true`, as `spacy assemble` runs it."""
    checkpoint = make_checkpoint(tiny_transformer, tmp_path / "ckpt", ["O", "PER"], "PER")
    nlp = make_nlp(checkpoint)
    nlp.config["initialize"]["components"]["wnut_ner"] = {"checkpoint_head": True}
    nlp.initialize()
    assert [(e.text, e.label_) for e in nlp("tom hanks").ents] == [("tom hanks", "PER")]


def test_cli_round_trip_and_errors(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "pipeline")

    def cli(*args):
        return subprocess.run(wnut_command(*args), capture_output=True, text=True)

    out = cli("export-hf", tmp_path / "pipeline", tmp_path / "hf")
    assert out.returncode == 0, out.stderr
    out = cli("import-hf", tmp_path / "hf", tmp_path / "back")
    assert out.returncode == 0 and "IOB2" in out.stdout, out.stderr
    assert ents_of(spacy.load(tmp_path / "back").pipe(TEXTS)) == GOLD
    out = cli("import-hf", tmp_path / "missing", tmp_path / "x")
    assert out.returncode == 1 and "missing" in out.stderr
    out = cli("export-hf", tmp_path / "pipeline", tmp_path / "y", "--component", "ner")
    assert out.returncode == 1 and "--component ner: the pipeline has no such component" in out.stderr
    assert "Traceback" not in out.stderr


def test_trainer_recipe_script_trains_and_its_checkpoint_serves_in_spacy(tiny_transformer, tmp_path):
    """bench/hf_recipe.py (the scale-out route: Trainer / accelerate) for a few CPU steps, then import."""
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    DocBin(docs=[eg.reference for eg in train_examples(nlp)]).to_disk(tmp_path / "data.spacy")
    script = Path(__file__).parents[2] / "bench" / "hf_recipe.py"
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tiny_transformer),
            str(tmp_path / "data.spacy"),
            str(tmp_path / "data.spacy"),
            str(tmp_path / "hf"),
            "--max-steps",
            "4",
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # Dev scores from the recipe's compute_metrics (the packaged seqeval metric, through evaluate).
    dev = json.loads(out.stdout.strip().splitlines()[-1])["dev_scores_first_subword"]
    assert set(dev) == {"precision", "recall", "f1", "accuracy"} and 0.0 <= dev["accuracy"] <= 1.0
    checkpoint = tmp_path / "hf" / "best"
    imported = from_hf(checkpoint)
    assert set(imported.get_pipe("wnut_ner").labels) == {"corporation", "creative-work", "location", "person"}
    # The component's token probabilities are the checkpoint's, on each word's first subword.
    hf_model = AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    pipe = imported.get_pipe("wnut_ner")
    for text in TEXTS + MORE_TEXTS:
        doc = imported.make_doc(text)
        words = [t.text for t in doc]
        encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            probs = hf_model(**encoded).logits[0].softmax(-1).numpy()
        word_ids = encoded.word_ids()
        first = [word_ids.index(i) for i in range(len(words))]
        ours = pipe.token_probs(pipe.model.predict([doc])).probs
        assert numpy.allclose(ours, probs[first], atol=1e-5)


def test_parity_script_reports_both_setups(trained_nlp, tmp_path):
    """bench/hf_parity.py: full parity on the pipeline's words; causes named on spaCy tokens."""
    from spacy.tokens import DocBin

    trained_nlp.to_disk(tmp_path / "pipeline")
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))] + [spacy.blank("en")(t) for t in NOISY_TEXTS]
    DocBin(docs=docs).to_disk(tmp_path / "data.spacy")
    script = Path(__file__).parents[2] / "bench" / "hf_parity.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "pipeline"),
            str(tmp_path / "data.spacy"),
            "--output",
            str(tmp_path / "parity.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "parity.json").read_text())
    assert figures["sentences"] == len(docs)
    assert figures["hf_compatible"]["parity"] == 1.0 and figures["hf_compatible"]["equal"] > 0
    assert "other" not in figures["default"]["differing_sentences_by_cause"]
    assert "hf_compatible: " in result.stdout and "default: " in result.stdout


def test_export_replaces_an_output_only_with_overwrite_and_never_a_file(trained_nlp, tmp_path):
    from spacy_wnut.errors import OutputError

    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "mine.txt").write_text("kept")
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(OutputError, match="hf: already exists; pass --overwrite"):
        export_hf(trained_nlp, tmp_path / "hf")
    assert (tmp_path / "hf" / "mine.txt").read_text() == "kept"
    with pytest.raises(OutputError, match="plain: is a file, and this command writes a directory"):
        export_hf(trained_nlp, tmp_path / "plain", overwrite=True)
    assert (tmp_path / "plain").read_text() == "a file"
    export_hf(trained_nlp, tmp_path / "hf", overwrite=True)
    assert not (tmp_path / "hf" / "mine.txt").exists() and (tmp_path / "hf" / "model.safetensors").exists()


def save_sequence_classifier(tiny_transformer, path, architectures=True):
    import json

    from transformers import BertForSequenceClassification

    tags = ["O", "B-PER", "I-PER"]
    model = BertForSequenceClassification.from_pretrained(
        tiny_transformer, id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)}
    )
    model.save_pretrained(path)
    BertTokenizerFast.from_pretrained(tiny_transformer).save_pretrained(path)
    if not architectures:
        config = json.loads((path / "config.json").read_text())
        config.pop("architectures")
        (path / "config.json").write_text(json.dumps(config))
    return path


def test_a_sequence_classification_checkpoint_is_refused(tiny_transformer, tmp_path):
    from spacy_wnut.errors import InputError

    checkpoint = save_sequence_classifier(tiny_transformer, tmp_path / "seq")
    with pytest.raises(InputError, match=r"a BertForSequenceClassification checkpoint, not a token-classification"):
        from_hf(checkpoint)


def test_a_checkpoint_without_token_classification_weights_is_refused(tiny_transformer, tmp_path):
    from spacy_wnut.errors import InputError

    checkpoint = save_sequence_classifier(tiny_transformer, tmp_path / "seq", architectures=False)
    with pytest.raises(InputError, match=r"holds the weights of a sequence-classification head \(bert\.pooler"):
        from_hf(checkpoint)


def test_a_checkpoint_without_tokenizer_files_is_named(tiny_transformer, tmp_path):
    checkpoint = make_checkpoint(tiny_transformer, tmp_path / "ckpt", ["O", "B-PER", "I-PER"])
    for file in checkpoint.iterdir():
        if "token" in file.name or file.name in ("vocab.txt", "special_tokens_map.json"):
            file.unlink()
    result = subprocess.run(wnut_command("import-hf", checkpoint, tmp_path / "out"), capture_output=True, text=True)
    assert result.returncode == 1 and "its tokenizer cannot be loaded" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_labels_of_an_unknown_scheme_are_read_as_plain_with_a_warning(tiny_transformer, tmp_path):
    from spacy_wnut.pipeline.schemes import GuessedSchemeWarning

    checkpoint = make_checkpoint(tiny_transformer, tmp_path / "ckpt", ["O", "X-ORG", "X-PER"])
    with pytest.warns(GuessedSchemeWarning, match=r"\['X-ORG', 'X-PER'\] look like tags of a scheme"):
        nlp = from_hf(checkpoint)
    assert nlp.get_pipe("wnut_ner").head.kind == "plain"


def test_export_hf_of_a_run_time_pipeline_says_to_export_its_source(trained_nlp, tmp_path):
    from spacy_wnut.tools.runtime_export import build_runtime

    build_runtime(trained_nlp).to_disk(tmp_path / "runtime")
    result = subprocess.run(
        wnut_command("export-hf", tmp_path / "runtime", tmp_path / "hf"), capture_output=True, text=True
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "is a run-time pipeline (an ONNX graph, made by export-runtime)" in result.stderr
    assert not (tmp_path / "hf").exists()
