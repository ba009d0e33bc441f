"""The report and the annotate HTML in a real browser (headless Chromium through Playwright)."""

import os
import shutil

import pytest
from spacy.tokens import DocBin

from ..util import TRAIN_DATA, train_examples

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,  # headless Chromium
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium not installed (Debian: apt-get install chromium chromium-driver; or set CHROMIUM_PATH)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_report_shows_tables_charts_and_entities(browser, trained_nlp, tmp_path):
    from spacy_wnut.data.corpus import read_examples
    from spacy_wnut.tools.report import build_report, render_html
    from spacy_wnut.tools.scoring import predict_examples

    DocBin(docs=[eg.reference for eg in train_examples(trained_nlp, TRAIN_DATA)]).to_disk(tmp_path / "test.spacy")
    examples = predict_examples(trained_nlp, read_examples(trained_nlp, tmp_path / "test.spacy"))
    (tmp_path / "report.html").write_text(render_html(build_report(examples)))
    page = browser.new_page()
    page.goto((tmp_path / "report.html").as_uri())
    assert page.locator("#overall tr").count() == 3
    assert page.locator("#per-type tr").count() == 5  # header + 4 types
    for chart in ("#f1-chart", "#confusion-chart"):
        assert page.eval_on_selector(chart, "img => img.complete && img.naturalWidth > 100")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_annotate_html_shows_every_entity(browser, trained_nlp, tmp_path):
    from spacy_wnut.tools.annotate import annotate

    (tmp_path / "in.txt").write_text("\n".join(text for text, _ in TRAIN_DATA))
    annotate(trained_nlp, tmp_path / "in.txt", tmp_path / "out.html", progress=False)
    page = browser.new_page()
    page.goto((tmp_path / "out.html").as_uri())
    marks = page.locator("mark")
    assert marks.count() == sum(len(ents) for _, ents in TRAIN_DATA)
    assert "Tom Hanks" in marks.nth(1).inner_text() and "PERSON" in marks.nth(1).inner_text().upper()
    page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)
