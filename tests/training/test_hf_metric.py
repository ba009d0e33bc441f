"""The packaged seqeval metric for HF `evaluate`: offline, the hub metric's interface, and the numbers of
`spacy evaluate`, from `Trainer`'s `compute_metrics` and from `evaluate`'s token-classification evaluator."""

import importlib.util
import socket

import numpy
import pytest
import spacy
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from spacy_wnut.errors import InputError, MissingExtra
from spacy_wnut.tools.hf_checkpoint import export_hf
from spacy_wnut.tools.scoring import iob_tags, predict_examples, seqeval_scores
from spacy_wnut.training.hf_metric import compute_metrics, load_seqeval_metric, seqeval_metric_path

from ..util import TRAIN_DATA

# Sentences the tiny pipeline was not trained on: it gets some entities wrong, and its argmax tags hold
# invalid I- starts (so Viterbi and argmax decoding differ). Gold as (start_char, end_char, label).
HELD_OUT = [
    ("tom hanks and apple inc in new york", [(0, 9, "person"), (14, 23, "corporation"), (27, 35, "location")]),
    ("game of thrones , the new apple", [(0, 15, "creative-work"), (26, 31, "corporation")]),
    ("watching tom", [(9, 12, "person")]),
    ("new york hanks game", [(0, 8, "location")]),
    ("apple's new york-based game of thrones", [(0, 5, "corporation"), (8, 16, "location")]),
]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def metric():
    return load_seqeval_metric()


def gold_examples(nlp):
    """TRAIN_DATA and HELD_OUT as examples whose predicted docs are the gold words joined by single spaces:
    the text `evaluate`'s token-classification evaluator gives the HF pipeline."""
    examples = []
    for text, ents in TRAIN_DATA + HELD_OUT:
        reference = Example.from_dict(nlp.make_doc(text), {"entities": ents}).reference
        words = [t.text for t in reference]
        examples.append(Example(Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False]), reference))
    return examples


def overall(results):
    return {key: results[f"overall_{key}"] for key in ("precision", "recall", "f1")}


def per_type(results):
    return {label: (row["precision"], row["recall"], row["f1"]) for label, row in results.items() if "_" not in label}


def spacy_overall(scores):
    return {"precision": scores["ents_p"], "recall": scores["ents_r"], "f1": scores["ents_f"]}


def spacy_per_type(scores):
    return {label: (row["p"], row["r"], row["f"]) for label, row in scores["ents_per_type"].items()}


def test_metric_loads_from_its_path_and_computes_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    metric = load_seqeval_metric()
    assert metric.name == "seqeval"
    assert metric.compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["overall_f1"] == 1.0


def test_evaluate_load_of_the_path_gives_the_hub_metrics_outputs():
    import evaluate

    metric = evaluate.load(seqeval_metric_path())
    results = metric.compute(predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "O", "B-LOC"]])
    assert set(results) == {"PER", "LOC", "overall_precision", "overall_recall", "overall_f1", "overall_accuracy"}
    assert set(results["PER"]) == {"precision", "recall", "f1", "number"}
    assert results["LOC"]["number"] == 1


def test_scores_equal_spacy_scorer_and_seqeval_scores_to_the_last_digit(trained_nlp, metric):
    scored = predict_examples(trained_nlp, gold_examples(trained_nlp))
    gold, predicted, unscorable = iob_tags(scored)
    results = metric.compute(predictions=predicted, references=gold)
    spacy_scores, seq = get_ner_prf(scored), seqeval_scores(scored)
    assert 0 < results["overall_f1"] < 1 and not unscorable
    assert (
        overall(results) == spacy_overall(spacy_scores) == {"precision": seq["p"], "recall": seq["r"], "f1": seq["f"]}
    )
    assert per_type(results) == spacy_per_type(spacy_scores)
    assert per_type(results) == {label: (row["p"], row["r"], row["f"]) for label, row in seq["per_type"].items()}


def test_evaluator_over_the_exported_checkpoint_equals_the_argmax_pipeline(trained_nlp, model_dir, metric, tmp_path):
    """`evaluate`'s evaluator labels each word by its first subword's argmax tag, as `decoder = "argmax"` does."""
    import datasets
    import evaluate

    from spacy_wnut.data.convert import doc_to_iob

    argmax = spacy.load(model_dir, config={"components": {"wnut_ner": {"decoder": "argmax"}}})
    examples = gold_examples(argmax)
    data = datasets.Dataset.from_dict(
        {
            "tokens": [[t.text for t in eg.reference] for eg in examples],
            "ner_tags": [doc_to_iob(eg.reference) for eg in examples],
        }
    )
    checkpoint = export_hf(trained_nlp, tmp_path / "hf")
    results = evaluate.evaluator("token-classification").compute(
        model_or_pipeline=str(checkpoint), data=data, metric=metric
    )
    theirs = get_ner_prf(predict_examples(argmax, examples))
    assert 0 < results["overall_f1"] < 1
    assert overall(results) == spacy_overall(theirs) and per_type(results) == spacy_per_type(theirs)
    viterbi = get_ner_prf(predict_examples(trained_nlp, gold_examples(trained_nlp)))
    assert spacy_overall(viterbi) != spacy_overall(theirs)  # the data tells the decoders apart


def test_keyword_arguments_reach_seqeval(metric):
    """An I- start counts as an entity in conlleval's lenient mode, not in strict IOB2."""
    predictions, references = [["I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]]
    assert metric.compute(predictions=predictions, references=references)["overall_f1"] == 1.0
    strict = metric.compute(predictions=predictions, references=references, mode="strict", scheme="IOB2")
    assert strict["overall_f1"] == 0.0


def test_unknown_scheme_is_named(metric):
    with pytest.raises(ValueError, match="scheme must be one of .* got 'BIO'"):
        metric.compute(predictions=[["O"]], references=[["O"]], scheme="BIO")


def test_sequences_of_different_lengths_name_the_first_one(metric):
    with pytest.raises(ValueError, match=r"predictions\[1\] has 2 tags but references\[1\] has 3"):
        metric.compute(predictions=[["O"], ["B-PER", "O"]], references=[["O"], ["B-PER", "O", "O"]])


def test_different_numbers_of_sequences_are_an_error(metric):
    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(1\) and references \(2\)"):
        metric.compute(predictions=[["O"]], references=[["O"], ["O"]])


def test_compute_metrics_scores_only_positions_not_labelled_minus_100(metric):
    logits = numpy.full((2, 4, len(TAGS)), -5.0)
    predicted = [[3, 1, 2, 4], [0, 3, 4, 1]]  # wrong tags where the label is -100 only
    for row, ids in enumerate(predicted):
        logits[row, range(4), ids] = 5.0
    labels = numpy.array([[-100, 1, 2, -100], [-100, 3, 4, -100]])
    scores = compute_metrics(TAGS)((logits, labels))
    expected = metric.compute(
        predictions=[["B-PER", "I-PER"], ["B-LOC", "I-LOC"]], references=[["B-PER", "I-PER"], ["B-LOC", "I-LOC"]]
    )
    assert scores == {key: expected[f"overall_{key}"] for key in ("precision", "recall", "f1", "accuracy")}


def test_compute_metrics_takes_tag_ids_and_an_id2label_mapping():
    labels = numpy.array([[-100, 1, 2, 0], [-100, 3, 0, -100]])
    as_list = compute_metrics(TAGS)((numpy.eye(len(TAGS))[numpy.maximum(labels, 0)], labels))
    as_ids = compute_metrics(dict(enumerate(TAGS)))((numpy.maximum(labels, 0), labels))
    assert as_ids == as_list and all(type(value) is float for value in as_ids.values())


def test_compute_metrics_per_type_flattens_each_type_as_run_ner_does():
    labels = numpy.array([[1, 2, 3]])
    scores = compute_metrics(TAGS, per_type=True)((labels, labels))
    assert {"PER_f1", "PER_number", "LOC_precision", "overall_f1", "overall_accuracy"} <= set(scores)
    assert scores["PER_number"] == 1 and type(scores["PER_number"]) is int


def test_compute_metrics_rejects_predictions_shaped_unlike_the_labels():
    with pytest.raises(InputError, match=r"predictions: shape \(1, 3\) does not match the labels' \(1, 4\)"):
        compute_metrics(TAGS)((numpy.zeros((1, 3, len(TAGS))), numpy.zeros((1, 4), dtype=int)))


def test_compute_metrics_rejects_a_tag_id_outside_the_label_list():
    with pytest.raises(InputError, match="label_ids: tag id 7 is not in the label list of 5 tags"):
        compute_metrics(TAGS)((numpy.zeros((1, 2), dtype=int), numpy.array([[0, 7]])))


@pytest.mark.parametrize("per_type", [False, True])
def test_compute_metrics_of_a_batch_without_a_scored_position_is_zero_with_a_warning(per_type):
    labels = numpy.full((2, 3), -100)
    with pytest.warns(UserWarning, match="no scored position"):
        scores = compute_metrics(TAGS, per_type=per_type)((numpy.zeros((2, 3), dtype=int), labels))
    assert set(scores.values()) == {0.0} and len(scores) == 4


def test_compute_metrics_skips_a_row_without_a_scored_position():
    labels = numpy.array([[-100, -100, -100], [1, 2, 0]])
    scores = compute_metrics(TAGS)((numpy.array([[3, 3, 3], [1, 2, 0]]), labels))
    assert scores["f1"] == 1.0 and scores["accuracy"] == 1.0


def test_compute_metrics_refuses_an_id2label_with_a_gap():
    with pytest.raises(InputError, match=r"label_list: ids must be 0..2 without gaps; missing \[2\]"):
        compute_metrics({0: "O", 1: "B-PER", 3: "I-PER"})


def test_compute_metrics_refuses_tags_of_no_scheme():
    with pytest.raises(InputError, match=r"label_list: \['PER'\] are not O or PREFIX-TYPE tags"):
        compute_metrics(["O", "PER", "B-LOC"])


def test_compute_metrics_refuses_nan_logits():
    logits = numpy.zeros((1, 2, len(TAGS)))
    logits[0, 1, 2] = numpy.nan
    with pytest.raises(InputError, match="predictions: hold NaN or infinite logits"):
        compute_metrics(TAGS)((logits, numpy.array([[1, 2]])))


def test_without_evaluate_the_error_names_the_train_extra(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "evaluate" else find_spec(name, *a)
    )
    with pytest.raises(MissingExtra, match=r"evaluate: pip install 'spacy-wnut\[train\]'"):
        load_seqeval_metric()
