"""`train-final`: retrain on all labelled data (train + dev) for the step count selected on dev."""

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from confection import Config, ConfigValidationError
from spacy.util import registry
from spacy.vocab import Vocab

from ..data.convert import docbin_files, read_docbin
from ..errors import TRAIN_PACKAGES, ConfigError, InputError, describe_config_error, require
from .schedules import STEP_META_KEY, steps_per_epoch, total_training_steps


def selected_step(pipeline: Union[str, Path]) -> int:
    """The training step at which a pipeline saved by `spacy train` was selected (`record_training_step`)."""
    import srsly

    meta_path = Path(pipeline) / "meta.json"
    if not meta_path.is_file():
        raise InputError(str(meta_path), f"missing; {pipeline} is not a saved pipeline")
    step = srsly.read_json(meta_path).get(STEP_META_KEY, {}).get("step")
    if not step:
        raise InputError(
            str(meta_path),
            "no training step recorded; train with "
            '`[training] before_update = {"@callbacks":"spacy_wnut.record_training_step.v1"}`',
        )
    return int(step)


def train_final(
    config_path: Union[str, Path],
    selected: Union[str, Path],
    output: Union[str, Path],
    train: List[Union[str, Path]],
    dev: Union[str, Path],
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
    component: Optional[str] = None,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Retrain `config_path` on all of `train` (e.g. train and dev) for the step count at which
    `selected` was chosen, on the selection run's learning-rate schedule, and save it with
    `selected`'s `entity_bias` to `output` (atomically).

    The selection run's schedule length is derived again from its own training
    corpus (`overrides["paths.train"]`, or the config's) and `max_epochs`, so the
    final model sees the same learning rate at each step; it stops at the
    selected step, and its last state is saved (no model is chosen on `dev`,
    which it was trained on).

    component (Optional[str]): the `wnut_ner` component; None finds the pipeline's one.
    overwrite (bool): replace an existing output directory.
    """
    require("train-final", TRAIN_PACKAGES, "train")
    import tempfile

    from spacy.cli.train import train as spacy_train

    from ..data.outputs import DIRECTORY, atomic_path, check_output
    from ..pipeline.component import find_wnut_pipe, load_pipeline

    overrides = dict(overrides or {})
    check_output(output, [selected, *train, dev], overwrite=overwrite, kind=DIRECTORY)
    step = selected_step(selected)
    component, pipe = find_wnut_pipe(load_pipeline(selected), component)
    bias = pipe.entity_bias
    config = _checked_config(config_path, overrides, component)
    n_docs = sum(len(read_docbin(file, Vocab())) for path in train for file in docbin_files(path))
    if n_docs == 0:
        raise InputError(", ".join(map(str, train)), "--train: no documents to train on")
    total = _schedule_end(config)
    if step > total:
        warnings.warn(
            f"the selected step {step} is past the end of the selection run's learning-rate schedule "
            f"({total} steps): the last {step - total} steps are trained at learning rate 0",
            UserWarning,
            stacklevel=2,
        )
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train"
        corpus.mkdir()
        for i, path in enumerate(train):
            for j, file in enumerate(docbin_files(path)):
                (corpus / f"{i:02d}-{j:03d}.spacy").symlink_to(Path(file).resolve())
        final_overrides = {
            **overrides,
            "paths.train": str(corpus),
            "paths.dev": str(dev),
            "training.max_steps": step,
            "training.max_epochs": 0,
            "training.eval_frequency": step,
            "training.optimizer.learn_rate.total_steps": total,
        }
        spacy_train(config_path, Path(tmp) / "out", use_gpu=gpu_id, overrides=final_overrides)
        nlp = load_pipeline(Path(tmp) / "out" / "model-last", config={"components": {component: {"entity_bias": bias}}})
        nlp.meta[STEP_META_KEY] = {
            "step": step,
            "epoch": None,
            "final": True,
            "schedule_steps": total,
            "train": [str(p) for p in train],
        }
        with atomic_path(output) as out:
            nlp.to_disk(out)
    return {"steps": step, "total_steps": total, "entity_bias": bias}


def _checked_config(config_path: Union[str, Path], overrides: Dict[str, Any], component: str) -> Config:
    """The training config with `overrides`, interpolated, its [training] block validated as `spacy train`
    does, and holding `component` as a `wnut_ner`; each problem a `ConfigError` naming the file and key."""
    from spacy.schemas import ConfigSchemaTraining
    from spacy.util import load_config

    if not Path(config_path).is_file():
        raise InputError(str(config_path), "no such config file")
    try:
        written = load_config(config_path)
        unknown = [key for key in overrides if not _has_key(written, key)]
        if unknown:
            raise ConfigError(f"--{unknown[0]}: no such setting in {config_path} (a typo?)")
        config = load_config(config_path, overrides=overrides, interpolate=True)
    except ConfigValidationError as err:
        raise ConfigError(f"{config_path}: {describe_config_error(err)}") from None
    try:
        registry.resolve(config["training"], schema=ConfigSchemaTraining)
    except ConfigValidationError as err:
        raise ConfigError(f"{config_path}: {describe_config_error(err, 'training')}") from None
    except KeyError as err:
        raise ConfigError(f"{config_path}: no {err.args[0]!r} section (not a spacy train config)") from None
    factory = config.get("components", {}).get(component, {}).get("factory")
    if factory != "wnut_ner":
        raise ConfigError(
            f"{config_path}: no [components.{component}] with factory wnut_ner, the component of the selected "
            "pipeline (pass --component, or the config the selected pipeline was trained with)"
        )
    return config


def _has_key(config: Config, dotted: str) -> bool:
    """Whether the config holds the setting `section.key` (sections nested by dots)."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _schedule_end(config) -> int:
    """The step at which the selection run's learning rate reached 0 (its `total_steps`)."""
    given = config["training"]["optimizer"]["learn_rate"].get("total_steps")
    if given:
        return int(given)
    training = config["training"]
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    corpus = config["paths"]["train"]
    if not corpus:
        raise ConfigError("the config has no `paths.train` to derive the selection run's schedule from")
    return total_training_steps(
        training["max_epochs"],
        training["max_steps"],
        training["accumulate_gradient"],
        lambda: steps_per_epoch(corpus, batcher),
    )
