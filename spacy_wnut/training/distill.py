"""`distill`: a teacher pipeline labels the training texts with its tag distributions once, and a student
trains on them under `spacy train` (`pipeline/soft_targets.py` holds the loss).

The teacher's targets are written to `OUTPUT/soft-targets/` (`train/`, `dev/`, and the unlabelled texts
among `train/`), with `soft-targets.json` saying what made them: the sha256 of the teacher's files, the
engine that ran it, and each input's sha256. A rerun with the same teacher and inputs reuses them
without running the teacher; targets made by another teacher or from other inputs are refused.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..data.assets import sha256sum, tree_sha256
from ..data.convert import CORPUS_ATTRS, docbin_files, read_docbin
from ..data.outputs import DIRECTORY, atomic_path, check_output
from ..data.partials import pipeline_dir
from ..data.records import BadRecord, read_text_file
from ..errors import TRAIN_PACKAGES, ConfigError, InputError, require
from ..pipeline.soft_targets import SoftTargets, set_soft_targets

TARGETS_DIR = "soft-targets"
MANIFEST = "soft-targets.json"
MANIFEST_VERSION = 1
ROLES = ("train", "dev", "unlabelled")
UNLABELLED_FORMATS = {".txt": "txt", ".jsonl": "jsonl"}
# Bad lines listed by location in the manifest, per input (all are counted).
LISTED_BAD_LINES = 20
READER = "spacy_wnut.SoftTargetCorpus.v1"


@dataclass(frozen=True)
class TargetInput:
    """One input the teacher labels: a labelled DocBin (file or directory) or a `.txt`/`.jsonl` file."""

    path: Path
    role: str

    @property
    def folder(self) -> str:
        """Where its targets go: unlabelled texts are trained on, so they sit with `train`."""
        return "dev" if self.role == "dev" else "train"


def target_inputs(
    train: Sequence[Union[str, Path]], dev: Optional[Union[str, Path]], unlabelled: Sequence[Union[str, Path]] = ()
) -> List[TargetInput]:
    """The inputs of a distillation, checked: DocBins for `train`/`dev`, `.txt`/`.jsonl` for `unlabelled`."""
    inputs = [TargetInput(Path(p), "train") for p in train]
    if dev is not None:
        inputs.append(TargetInput(Path(dev), "dev"))
    inputs += [TargetInput(Path(p), "unlabelled") for p in unlabelled]
    if not any(i.role != "dev" for i in inputs):
        raise ConfigError("--train or --unlabelled: the student needs something to train on")
    for given in inputs:
        if given.role == "unlabelled":
            if not given.path.is_file():
                raise InputError(str(given.path), "no such file (unlabelled texts: a .txt or .jsonl file)")
            if given.path.suffix not in UNLABELLED_FORMATS:
                raise InputError(str(given.path), "unlabelled texts must be a .txt (one per line) or .jsonl file")
        else:
            docbin_files(given.path)
    return inputs


def made_from(teacher: Union[str, Path], inputs: Sequence[TargetInput], engine: str) -> Dict[str, Any]:
    """What identifies a set of soft targets: the teacher's files and engine, each input's content."""
    path = pipeline_dir(teacher)
    if path is None:
        raise InputError(str(teacher), "no pipeline directory or installed pipeline package of that name")
    return {
        "version": MANIFEST_VERSION,
        "teacher": {"pipeline": str(teacher), "sha256": tree_sha256(path), "engine": engine},
        "inputs": [
            {"path": str(i.path), "role": i.role, "sha256": [sha256sum(f) for f in _input_files(i)]} for i in inputs
        ],
    }


def _input_files(given: TargetInput) -> List[Path]:
    return [given.path] if given.role == "unlabelled" else docbin_files(given.path)


def check_soft_targets(directory: Union[str, Path], expected: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest of the soft targets in `directory`, if they were made by `expected`'s teacher from
    its inputs; else `InputError` naming each difference.

    RETURNS (Dict[str, Any]): the manifest (`soft-targets.json`).
    """
    path = Path(directory) / MANIFEST
    try:
        manifest = srsly.read_json(path)
    except (OSError, ValueError) as err:
        raise InputError(str(path), f"cannot read the soft targets' manifest ({type(err).__name__}: {err})") from None
    differences = describe_differences(manifest, expected)
    if differences:
        raise InputError(
            str(directory),
            "these soft targets were made from something else: "
            + "; ".join(differences)
            + " (pass --overwrite to label the inputs with this teacher again)",
        )
    return manifest


def describe_differences(manifest: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    """What differs between the targets' manifest and the teacher and inputs of this run."""
    if manifest.get("version") != expected["version"]:
        return [f"manifest version {manifest.get('version')!r}, this spacy-wnut writes {expected['version']}"]
    out = []
    was, now = manifest.get("teacher", {}), expected["teacher"]
    if was.get("sha256") != now["sha256"]:
        out.append(f"another teacher (made by {was.get('pipeline')!r}; the files of {now['pipeline']!r} differ)")
    if was.get("engine") != now["engine"]:
        out.append(f"teacher engine {was.get('engine')!r}, this run's is {now['engine']!r}")
    recorded = {(i["role"], i["path"]): i["sha256"] for i in manifest.get("inputs", [])}
    wanted = {(i["role"], i["path"]): i["sha256"] for i in expected["inputs"]}
    for key in wanted:
        if key not in recorded:
            out.append(f"{key[0]} input {key[1]} was not labelled")
        elif recorded[key] != wanted[key]:
            out.append(f"{key[0]} input {key[1]} changed since it was labelled")
    out += [
        f"{role} input {path} was labelled but is not given now"
        for role, path in recorded
        if (role, path) not in wanted
    ]
    return out


def write_soft_targets(
    teacher: Union[str, Path],
    directory: Union[str, Path],
    inputs: Sequence[TargetInput],
    *,
    engine: Optional[str] = None,
    component: Optional[str] = None,
    batch_size: int = 64,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Label `inputs` with the teacher's tag log-probabilities per token and write them to `directory`
    (atomically), or reuse the targets there when this teacher made them from these inputs.

    teacher (Union[str, Path]): a pipeline with a `wnut_ner` component (any backbone, any engine).
    directory (Union[str, Path]): where the targets go (`train/`, `dev/`, `soft-targets.json`).
    inputs (Sequence[TargetInput]): from `target_inputs`.
    engine (Optional[str]): run the teacher with this engine (None: its own).
    component (Optional[str]): the teacher's `wnut_ner` component; None finds the only one.
    overwrite (bool): replace targets made by another teacher or from other inputs.
    RETURNS (Dict[str, Any]): the manifest, with `"reused"`.
    """
    from ..pipeline.component import find_wnut_pipe, load_pipeline

    directory = Path(directory)
    nlp = load_pipeline(teacher)
    name, pipe = find_wnut_pipe(nlp, component)
    if engine is not None and pipe.engine != engine:
        nlp = load_pipeline(teacher, config={"components": {name: {"engine": engine}}})
        name, pipe = find_wnut_pipe(nlp, name)
    expected = made_from(teacher, inputs, pipe.engine)
    if (directory / MANIFEST).is_file():
        try:
            return {**check_soft_targets(directory, expected), "reused": True}
        except InputError:
            if not overwrite:
                raise
    check_output(directory, [i.path for i in inputs], overwrite=overwrite, kind=DIRECTORY)
    started = time.perf_counter()
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        records = []
        for index, given in enumerate(inputs):
            out = tmp / given.folder / f"{index:02d}-{given.path.stem}.spacy"
            out.parent.mkdir(exist_ok=True)
            stats = _label_input(nlp, pipe, given, out, batch_size)
            records.append({**stats, "path": str(given.path), "role": given.role, "output": str(out.relative_to(tmp))})
        manifest = {
            **expected,
            "inputs": [{**made, **stats} for made, stats in zip(expected["inputs"], records)],
            "tags": list(pipe.scheme.tags),
            "seconds": round(time.perf_counter() - started, 1),
        }
        srsly.write_json(tmp / MANIFEST, manifest)
    return {**manifest, "reused": False}


def _label_input(nlp: Language, pipe, given: TargetInput, out: Path, batch_size: int) -> Dict[str, Any]:
    """Label one input's docs and write them with their targets; its counts."""
    stats: Dict[str, Any] = {"docs": 0, "tokens": 0, "tokens_without_target": 0}
    if given.role == "unlabelled":
        bad: List[BadRecord] = []
        blank: List[int] = []
        docs = list(_unlabelled_docs(nlp, given.path, bad, blank))
        stats.update(
            lines_read=len(docs) + len(bad),
            bad_lines=len(bad),
            bad_lines_listed=[b.located(given.path) for b in bad[:LISTED_BAD_LINES]],
            blank_lines=len(blank),
        )
    else:
        docs = [doc for file in docbin_files(given.path) for doc in read_docbin(file, nlp.vocab)]
    docbin = DocBin(attrs=CORPUS_ATTRS, store_user_data=True)
    for doc, targets in zip(docs, teacher_targets(pipe, docs, batch_size)):
        set_soft_targets(doc, targets)
        docbin.add(doc)
        stats["docs"] += 1
        stats["tokens"] += len(doc)
        stats["tokens_without_target"] += int((~targets.has_target).sum())
    docbin.to_disk(out)
    return stats


def _unlabelled_docs(nlp: Language, path: Path, bad: List[BadRecord], blank: List[int]) -> Iterator[Doc]:
    """The teacher's tokenization of each text of a `.txt`/`.jsonl` file; bad lines go to `bad`."""
    for item in read_text_file(path, UNLABELLED_FORMATS[path.suffix], path.name, blank):
        if isinstance(item, BadRecord):
            bad.append(item)
        else:
            yield nlp.make_doc(item.text)


def teacher_targets(pipe, docs: Sequence[Doc], batch_size: int = 64) -> Iterator[SoftTargets]:
    """The teacher's IOB2 tag log-probabilities per token of each doc, in order (NaN rows: tokens the
    teacher saw no subword of). Docs run in batches of similar length."""
    tags = tuple(pipe.scheme.tags)
    results: Dict[int, SoftTargets] = {}
    order = sorted((i for i, doc in enumerate(docs) if len(doc)), key=lambda i: len(docs[i].text))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        probs = pipe.token_probs(pipe.subword_scores([docs[i] for i in batch]))
        log_probs = numpy.log(numpy.maximum(probs.probs, 1e-12)).astype("f")
        log_probs[~probs.has_rows] = numpy.nan
        bounds = numpy.concatenate([[0], numpy.cumsum(probs.doc_lengths)])
        for k, i in enumerate(batch):
            results[i] = SoftTargets(tags, log_probs[bounds[k] : bounds[k + 1]])
    for i in range(len(docs)):
        yield results.pop(i, None) or SoftTargets(tags, numpy.zeros((0, len(tags)), dtype="f"))


def student_config(config_path: Union[str, Path], train_dir: Path, dev: Path, overrides: Dict[str, Any]):
    """The student's training config: `config_path` with `overrides`, training on the soft targets in
    `train_dir` through `spacy_wnut.SoftTargetCorpus.v1` (the rest of `[corpora.train]` kept), selecting
    on the gold of `dev`."""
    from confection import ConfigValidationError
    from spacy.util import load_config

    from ..errors import describe_config_error

    if not Path(config_path).is_file():
        raise InputError(str(config_path), "no such config file")
    try:
        config = load_config(config_path, overrides=overrides, interpolate=False)
    except ConfigValidationError as err:
        raise ConfigError(f"{config_path}: {describe_config_error(err)}") from None
    train_key = config.get("training", {}).get("train_corpus", "corpora.train")
    section = config
    for part in train_key.split("."):
        section = section.get(part) if isinstance(section, dict) else None
    if not isinstance(section, dict) or "@readers" not in section:
        raise ConfigError(f"{config_path}: no [{train_key}] reader to train the student from")
    if not any(c.get("factory") == "wnut_ner" for c in config.get("components", {}).values()):
        raise ConfigError(f"{config_path}: no wnut_ner component to distil into")
    kept = {k: section[k] for k in ("gold_preproc", "max_length", "limit", "augmenter") if k in section}
    section.clear()
    section.update({"@readers": READER, "path": "${paths.train}", **kept})
    config["paths"]["train"] = str(train_dir)
    config["paths"]["dev"] = str(dev)
    return config


def distill(
    teacher: Union[str, Path],
    config_path: Union[str, Path],
    output: Union[str, Path],
    train: Sequence[Union[str, Path]],
    dev: Union[str, Path],
    unlabelled: Sequence[Union[str, Path]] = (),
    *,
    overrides: Optional[Dict[str, Any]] = None,
    engine: Optional[str] = None,
    component: Optional[str] = None,
    batch_size: int = 64,
    gpu_id: int = -1,
    targets_only: bool = False,
    overwrite: bool = False,
) -> Tuple[Dict[str, Any], Optional[Path]]:
    """Label `train`, `dev` and `unlabelled` with the teacher (or reuse its targets), write the student's
    config (`OUTPUT/config.cfg`) and train it with `spacy train` (`OUTPUT/model-best`, `model-last`),
    selecting on `dev`'s gold.

    RETURNS (Tuple[Dict[str, Any], Optional[Path]]): the targets' manifest and the student's config
        (None with `targets_only`).
    """
    require("distill", TRAIN_PACKAGES, "train")
    output = Path(output)
    inputs = target_inputs(train, dev, unlabelled)
    directory = output / TARGETS_DIR
    manifest = write_soft_targets(
        teacher, directory, inputs, engine=engine, component=component, batch_size=batch_size, overwrite=overwrite
    )
    if targets_only:
        return manifest, None
    for done in ("model-best", "model-last"):
        if (output / done).exists() and not overwrite:
            raise InputError(str(output / done), "already exists; pass --overwrite to train the student again")
    from spacy.cli.train import train as spacy_train

    config = student_config(config_path, (directory / "train").resolve(), Path(dev).resolve(), dict(overrides or {}))
    config_out = output / "config.cfg"
    with atomic_path(config_out) as tmp:
        config.to_disk(tmp)
    spacy_train(config_out, output, use_gpu=gpu_id)
    return manifest, config_out


def summarize(manifest: Dict[str, Any]) -> Iterable[str]:
    """One line per input of a targets manifest (for the CLI)."""
    for given in manifest["inputs"]:
        line = f"{given['role']} {given['path']}: {given['docs']} docs, {given['tokens']} tokens"
        if given.get("tokens_without_target"):
            line += f", {given['tokens_without_target']} without a teacher subword (no target)"
        if given["role"] == "unlabelled":
            line += f"; {given['lines_read']} lines read, {given['bad_lines']} bad, {given['blank_lines']} blank"
        yield line
