"""The architecture, checked: what runs imports nothing that trains, registered names resolve, and
pipelines saved before the layout by role still load and predict the same."""

import ast
import configparser
import importlib
import json
import sys
from pathlib import Path

import pytest
import spacy

from .util import ROOT, ents_of

PACKAGE = ROOT / "spacy_wnut"
# Folders (and tools) that make up the run-time pipeline: loading, tagging, annotate, evaluate, serving.
RUNTIME_PARTS = ["data", "ml", "pipeline", "tools/annotation", "errors.py", "__init__.py", "cli"]
RUNTIME_TOOLS = ["annotate.py", "stopping.py", "scoring.py", "listening.py", "serve"]
# The layers, lowest first: a module may import (at module level or lazily) only from its own layer or
# a lower one. The package root (`__init__.py`, the public names) is above them all.
LAYERS = ["errors.py", "data", "ml", "pipeline", "training", "tools", "cli", "__main__.py"]
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
    for part in [*RUNTIME_PARTS, *(f"tools/{name}" for name in RUNTIME_TOOLS)]:
        path = PACKAGE / part
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("listed", [*RUNTIME_PARTS, *(f"tools/{n}" for n in RUNTIME_TOOLS), *LAYERS])
def test_every_listed_module_exists(listed):
    assert (PACKAGE / listed).exists(), f"{listed} is listed in tests/test_layout.py but not in the package"


def module_name(path: Path) -> str:
    parts = list(path.with_suffix("").relative_to(PACKAGE.parent).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path):
    """Every `spacy_wnut` module `path` imports, anywhere in it (lazy imports and `TYPE_CHECKING` too)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import windows` imports a module, `from .x import f` a name
                yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    top = module.split(".")[1]
    return LAYERS.index(top if top in LAYERS else f"{top}.py")


def test_every_module_is_in_a_layer():
    unplaced = [
        m
        for m in MODULES
        if m != "spacy_wnut" and m.split(".")[1] not in LAYERS and f"{m.split('.')[1]}.py" not in LAYERS
    ]
    assert not unplaced, f"add these to LAYERS in tests/test_layout.py: {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "spacy_wnut"))
def test_no_import_goes_up_the_layers(module):
    upward = [
        target
        for target in package_imports(MODULES[module])
        if target.startswith("spacy_wnut.") and layer_of(target) > layer_of(module)
    ]
    assert not upward, f"{module} ({LAYERS[layer_of(module)]}) imports from a higher layer: {upward}"


def test_no_import_cycle_between_modules():
    graph = {
        m: {t for t in package_imports(p) if t in MODULES and t != m} for m, p in MODULES.items() if m != "spacy_wnut"
    }

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, set()))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_the_layer_checks_catch_an_upward_import_and_a_cycle(tmp_path, monkeypatch):
    fake = tmp_path / "spacy_wnut"
    for name, text in {
        "pipeline/a.py": "from ..tools import b\n",
        "tools/b.py": "def f():\n    from ..pipeline.a import x\n",
        "data/c.py": "from .c2 import y\n",
        "data/c2.py": "from . import c\n",
    }.items():
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    modules = {module_name(p): p for p in fake.rglob("*.py")}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    assert [t for t in package_imports(modules["spacy_wnut.pipeline.a"])] == ["spacy_wnut.tools.b"]
    with pytest.raises(AssertionError, match="higher layer"):
        test_no_import_goes_up_the_layers("spacy_wnut.pipeline.a")
    with pytest.raises(AssertionError, match="cycle.*data.c.*data.c2"):
        test_no_import_cycle_between_modules()


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


# Every name this package registers, frozen: saved configs and pipelines refer to them, so a name that
# disappears (or a new one not added here) fails. The spacy-transformers names load 0.2/0.3 pipelines.
REGISTERED = {
    "factories": ["wnut_ner"],
    "architectures": [
        "spacy-transformers.TransformerModel.v3",
        "spacy_wnut.HFEncoder.v1",
        "spacy_wnut.OnnxTagger.v1",
        "spacy_wnut.SubwordTagger.v1",
        "spacy_wnut.SubwordTagger.v2",
        "spacy_wnut.TokenFeatures.v1",
    ],
    "batchers": ["spacy_wnut.batch_by_subwords.v1"],
    "callbacks": ["spacy_wnut.record_training_step.v1"],
    "schedules": ["spacy_wnut.warmup_linear.v1"],
    "readers": ["spacy_wnut.SoftTargetCorpus.v1"],
    "span_getters": [
        "spacy-transformers.doc_spans.v1",
        "spacy-transformers.strided_spans.v1",
        "spacy_wnut.strided_spans.v1",
    ],
    "cli": ["wnut"],
}


@pytest.mark.parametrize("registry_name,name", [(r, n) for r, names in REGISTERED.items() for n in names])
def test_every_frozen_registered_name_resolves(registry_name, name):
    import spacy_wnut.pipeline.component  # noqa: F401  (registers the legacy names where spacy-transformers is absent)

    assert spacy.util.registry.has(registry_name, name), f"{registry_name} {name!r} is no longer registered"


def test_no_registered_name_is_missing_from_the_frozen_list():
    import spacy_wnut.pipeline.component  # noqa: F401

    for registry_name, frozen in REGISTERED.items():
        names = getattr(spacy.util.registry, registry_name).get_all()
        ours = {n for n in names if n.startswith("spacy_wnut.") or n in frozen}
        assert ours == set(frozen), f"{registry_name}: add to REGISTERED in tests/test_layout.py: {ours - set(frozen)}"


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
    saved = ROOT / "tests" / "fixtures" / "legacy-0.2.0"
    expected = json.loads((saved.parent / "legacy-0.2.0-entities.json").read_text())
    nlp = spacy.load(saved)
    assert ents_of(nlp.pipe(expected["texts"])) == [[tuple(e) for e in doc] for doc in expected["entities"]]
