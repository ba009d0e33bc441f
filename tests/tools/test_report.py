"""The evaluation report: scores side by side, confusion matrix, charts, worst sentences."""

import subprocess

import numpy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_wnut.tools.report import build_report, confusion_matrix, render_html

from ..util import TRAIN_DATA, train_examples, wnut_command


def examples_with_one_mistake(nlp):
    """Predictions of the overfitted model on its data plus one sentence it gets wrong."""
    gold = train_examples(nlp) + train_examples(nlp, [("tom hanks rocks", [(0, 9, "corporation")])])
    return [Example(nlp(eg.reference.text), eg.reference) for eg in gold]


def test_confusion_matrix_counts_gold_against_predicted_tokens(trained_nlp):
    examples = examples_with_one_mistake(trained_nlp)
    labels = ["corporation", "creative-work", "location", "person"]
    matrix = confusion_matrix(examples, labels)
    assert matrix.sum() == sum(len(eg.reference) for eg in examples)
    assert matrix[0, 3] == 2  # "tom hanks": gold corporation, predicted person
    assert numpy.trace(matrix) == matrix.sum() - 2


def test_report_has_scores_charts_and_worst_sentences(trained_nlp):
    report = build_report(examples_with_one_mistake(trained_nlp))
    assert report.worst[0][0] == 2 and report.worst[0][1].reference.text == "tom hanks rocks"
    assert len(report.worst) == 1
    page = render_html(report)
    assert page.count('src="data:image/png;base64,') == 2
    assert 'id="per-type"' in page and "tom hanks" in page and " rocks" in page and "<mark" in page


def test_report_cli_writes_the_page(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp, TRAIN_DATA)]).to_disk(tmp_path / "test.spacy")
    result = subprocess.run(
        wnut_command(
            "report", str(tmp_path / "model"), str(tmp_path / "test.spacy"), str(tmp_path / "out" / "report.html")
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "1.0000" in result.stdout and (tmp_path / "out" / "report.html").exists()
    assert "seqeval" in result.stdout and "spaCy scorer" in result.stdout
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'id="reliability-chart"' in page and 'id="threshold-chart"' in page
    # every entity of the overfit model is right: all of them kept up to its lowest probability
    assert "100.0% correct" in page and "Precision 0.8 or more: <code>min_score</code> 0.00" in page
