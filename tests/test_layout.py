"""The architecture, checked: what runs imports nothing that trains, registered names resolve, and
pipelines saved before the layout by role still load and predict the same."""

import ast
import configparser
import importlib
import json
from pathlib import Path

import pytest
import spacy

from .util import ROOT, ents_of

PACKAGE = ROOT / "spacy_wnut"
# Folders (and tools) that make up the run-time pipeline: loading, tagging, annotate, evaluate, serving.
RUNTIME_PARTS = ["data", "ml", "pipeline", "tools/annotation", "errors.py", "__init__.py", "cli.py"]
RUNTIME_TOOLS = ["annotate.py", "stopping.py", "scoring.py", "records.py", "serve.py", "batching_queue.py"]
TRAINING_STACK = {
    "torch",
    "transformers",
    "spacy_transformers",
    "datasets",
    "seqeval",
    "evaluate",
    "torchao",
    "safetensors",
}


def runtime_modules():
    for part in RUNTIME_PARTS:
        path = PACKAGE / part
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for name in RUNTIME_TOOLS:
        if (PACKAGE / "tools" / name).exists():
            yield PACKAGE / "tools" / name


def module_level_imports(path: Path):
    """Top-level modules imported when `path` is imported (not inside functions or `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop(0)
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.extend(node.body + getattr(node, "orelse", []) + getattr(node, "handlers", []))
        elif isinstance(node, ast.ExceptHandler):
            nodes.extend(node.body)


@pytest.mark.parametrize("path", list(runtime_modules()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_runtime_modules_import_nothing_that_trains_at_module_level(path):
    assert not set(module_level_imports(path)) & TRAINING_STACK


def entry_points():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    for group, lines in parser["options.entry_points"].items():
        for line in filter(None, (raw.strip() for raw in lines.splitlines())):
            name, target = (part.strip() for part in line.split("=", 1))
            yield group, name, target


@pytest.mark.parametrize("group,name,target", list(entry_points()), ids=lambda v: str(v))
def test_every_entry_point_resolves(group, name, target):
    module, attribute = target.split(":")
    assert callable(getattr(importlib.import_module(module), attribute))
    registries = {
        "spacy_factories": "factories",
        "spacy_architectures": "architectures",
        "spacy_callbacks": "callbacks",
        "spacy_batchers": "batchers",
        "thinc_schedules": "schedules",
    }
    if group in registries:
        assert spacy.util.registry.find(registries[group], name)["module"] == module


def test_span_getter_entry_point_is_found_in_the_span_getters_registry():
    """spacy-transformers created spaCy's `span_getters` registry; without it spacy-wnut does, reading the same
    entry point group, so configs keep their `@span_getters` blocks."""
    import spacy_wnut.ml.windows  # noqa: F401

    getter = spacy.util.registry.span_getters.get("spacy_wnut.strided_spans.v1")(window=4, stride=3)
    doc = spacy.blank("en")("one two three four five six seven")
    assert [span.text for span in getter([doc])[0]] == ["one two three four", "four five six seven"]


def test_a_pipeline_saved_by_0_2_0_loads_and_predicts_the_same():
    saved = ROOT / "tests" / "data" / "legacy-0.2.0"
    expected = json.loads((saved.parent / "legacy-0.2.0-entities.json").read_text())
    nlp = spacy.load(saved)
    assert ents_of(nlp.pipe(expected["texts"])) == [[tuple(e) for e in doc] for doc in expected["entities"]]
