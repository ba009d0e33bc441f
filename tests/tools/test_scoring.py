"""spaCy's scorer and seqeval, computed from the same docs, agree."""

import json
import subprocess
from itertools import islice

import pytest
from spacy.scorer import get_ner_prf
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_wnut.data.convert import convert_conll
from spacy_wnut.tools.scoring import evaluate, seqeval_scores

from ..util import make_nlp, overfit, wnut_command


def assert_scores_agree(spacy_scores, seq):
    assert seq["p"] == pytest.approx(spacy_scores["ents_p"], abs=1e-9)
    assert seq["r"] == pytest.approx(spacy_scores["ents_r"], abs=1e-9)
    assert seq["f"] == pytest.approx(spacy_scores["ents_f"], abs=1e-9)
    for label, row in spacy_scores["ents_per_type"].items():
        assert seq["per_type"][label]["f"] == pytest.approx(row["f"], abs=1e-9)


@pytest.fixture(scope="module")
def wnut_sample(wnut_mirror, tmp_path_factory):
    """30 real train sentences (learned) and 120 dev sentences (not), as one DocBin."""
    out = tmp_path_factory.mktemp("sample")
    convert_conll(wnut_mirror / "wnut17train.conll", out / "train.spacy")
    convert_conll(wnut_mirror / "emerging.dev.conll", out / "dev.spacy")
    return out


def test_scores_agree_on_real_predictions(wnut_sample, tiny_transformer, tmp_path):
    nlp = make_nlp(tiny_transformer)
    train_docs = list(islice(DocBin().from_disk(wnut_sample / "train.spacy").get_docs(nlp.vocab), 0, 200))
    train_docs = [d for d in train_docs if d.ents][:30]
    data = [(d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in train_docs]
    overfit(nlp, data, steps=40)
    dev_docs = list(islice(DocBin().from_disk(wnut_sample / "dev.spacy").get_docs(nlp.vocab), 120))
    DocBin(docs=train_docs + dev_docs).to_disk(tmp_path / "mixed.spacy")
    result = evaluate(nlp, tmp_path / "mixed.spacy", gold_preproc=True)
    assert result["docs"] == 150
    assert result["spacy"]["ents_p"] > 0 and result["spacy"]["ents_r"] > 0
    assert result["unscorable_predicted_entities"].get("overlaps_another_entity", 0) == 0
    assert_scores_agree(result["spacy"], result["seqeval"])


def test_on_spacy_tokens_scores_differ_only_by_overlapping_predictions(wnut_sample, tiny_transformer, tmp_path):
    """Two predictions on one gold token: spaCy counts a false positive, IOB cannot hold it."""
    nlp = make_nlp(tiny_transformer)
    docs = list(islice(DocBin().from_disk(wnut_sample / "train.spacy").get_docs(nlp.vocab), 0, 200))
    docs = [d for d in docs if d.ents][:30]
    overfit(nlp, [(d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in docs], steps=40)
    DocBin(docs=docs).to_disk(tmp_path / "sample.spacy")
    result = evaluate(nlp, tmp_path / "sample.spacy", gold_preproc=False)
    seq, spacy_scores = result["seqeval"], result["spacy"]
    overlaps = result["unscorable_predicted_entities"].get("overlaps_another_entity", 0)
    assert seq["true_positives"] > 0
    assert spacy_scores["ents_r"] == pytest.approx(seq["r"], abs=1e-9)
    assert spacy_scores["ents_p"] == pytest.approx(seq["true_positives"] / (seq["predicted"] + overlaps), abs=1e-9)


def test_misaligned_prediction_is_counted_and_scored_alike(tiny_transformer):
    import spacy
    from spacy.tokens import Doc

    nlp = spacy.blank("en")
    ref = Doc(nlp.vocab, words=["NewYork", "rocks", "Tom"], ents=["B-location", "O", "B-person"])
    pred = Doc(nlp.vocab, words=["New", "York", "rocks", "Tom"], spaces=[False, True, True, False])
    pred.ents = [pred.char_span(0, 3, label="location"), pred.char_span(14, 17, label="person")]
    examples = [Example(pred, ref)]
    assert_scores_agree(get_ner_prf(examples), seqeval_scores(examples))
    assert seqeval_scores(examples)["f"] == 1.0  # "New" covers gold "NewYork", as spaCy scores it
    # Two predictions inside one gold token cannot both be IOB tags: the second is
    # counted as unscorable (spaCy's scorer calls it a false positive).
    pred.ents = [pred.char_span(0, 3, label="location"), pred.char_span(3, 7, label="person")]
    examples = [Example(pred, ref)]
    assert seqeval_scores(examples)["unscorable"] == {"overlaps_another_entity": 1}
    assert get_ner_prf(examples)["ents_p"] == pytest.approx(0.5)


def test_evaluate_cli_writes_both_scores(trained_nlp, tmp_path):
    from ..util import TRAIN_DATA, train_examples

    trained_nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp, TRAIN_DATA)]).to_disk(tmp_path / "d.spacy")
    out = subprocess.run(
        wnut_command(
            "evaluate",
            str(tmp_path / "model"),
            str(tmp_path / "d.spacy"),
            "--output",
            str(tmp_path / "m.json"),
            "--no-progress",
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["spacy"]["ents_f"] == metrics["seqeval"]["f"] == 1.0
    assert "seqeval" in out.stdout and "person" in out.stdout


def test_evaluate_warns_in_one_line_about_gold_labels_the_model_cannot_predict(model_dir, trained_nlp, tmp_path):
    doc = trained_nlp.make_doc("apple inc rocks")
    doc.ents = [doc.char_span(0, 9, label="ORG")]
    DocBin(docs=[doc]).to_disk(tmp_path / "d.spacy")
    out = subprocess.run(
        wnut_command("evaluate", model_dir, tmp_path / "d.spacy", "-o", tmp_path / "m.json", "--no-progress"),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    (warning,) = [line for line in out.stderr.splitlines() if "does not predict" in line]
    assert warning.startswith("⚠ ") and "gold entity labels the pipeline does not predict: ORG" in warning
    assert json.loads((tmp_path / "m.json").read_text())["gold_labels_unknown_to_model"] == ["ORG"]


def test_evaluate_output_to_stdout_keeps_the_table_on_stderr(model_dir, trained_nlp, tmp_path):
    from ..util import train_examples

    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp)]).to_disk(tmp_path / "d.spacy")
    out = subprocess.run(
        wnut_command("evaluate", model_dir, tmp_path / "d.spacy", "--output", "-", "--no-progress"),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["seqeval"]["f"] == 1.0 and "seqeval" in out.stderr
