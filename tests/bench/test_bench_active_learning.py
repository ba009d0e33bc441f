"""bench/active_learning.py in --quick mode on the tiny model, so that it cannot rot (the study is for people)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from ..util import train_examples

pytestmark = pytest.mark.slow  # a simulated annotation loop with training

SCRIPT = Path(__file__).parents[2] / "bench" / "active_learning.py"


def test_quick_study_writes_curves_per_seed_and_strategy(tiny_transformer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [eg.reference for eg in train_examples(spacy.blank("en"))]
    DocBin(docs=docs * 3).to_disk(corpus / "train.spacy")
    for split in ("dev", "test"):
        DocBin(docs=docs).to_disk(corpus / f"{split}.spacy")
    command = [sys.executable, str(SCRIPT), "--backbone", str(tiny_transformer), "--corpus", str(corpus), "--quick"]
    command += ["--workdir", str(tmp_path / "work"), "--results", str(tmp_path / "results")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    [json_path] = (tmp_path / "results").glob("*-active-learning-quick.json")
    payload = json.loads(json_path.read_text())
    assert sorted(payload["runs"]) == ["0", "1"]
    for curves in payload["runs"].values():
        assert sorted(curves) == ["random", "uncertain"]
        assert curves["uncertain"][0] == curves["random"][0]  # one first draw and model, shared
        for rounds in curves.values():
            assert [r["labelled"] for r in rounds] == [4, 6] and all(0.0 <= r["f"] <= 1.0 for r in rounds)
        picked = curves["uncertain"][1]
        assert picked["picked_uncertainty_mean"] >= picked["pool_uncertainty_mean"]
    assert payload["summary"]["labelled"] == [4, 6]
    assert "Random's final mean F1" in json_path.with_suffix(".md").read_text()
    assert json_path.with_suffix(".png").stat().st_size > 5_000
