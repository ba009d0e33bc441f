"""`spacy wnut migrate`: a pipeline of spacy-wnut 0.3 or earlier saved in the 0.4 format.

0.4 reads old pipelines as they are (`ml/legacy.py`); migrating makes it
permanent: the config names `spacy_wnut.HFEncoder.v1` instead of
spacy-transformers' `TransformerModel.v3`, the encoder's weights are
safetensors (no pickle, nothing for `torch.load`), and the exact config is
kept. The migrated pipeline is loaded again and must give the same entities
and scores as the old one on the probe texts.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Union

import numpy
from spacy.language import Language

from ..data.outputs import DIRECTORY, atomic_path, check_output
from ..errors import TRAIN_PACKAGES, ConfigError, InputError, require
from ..ml.legacy import LEGACY_ENCODER, LEGACY_SPAN_GETTERS, LegacyEncoderWarning, spacy_transformers_installed
from ..pipeline.component import load_pipeline

NEW_ENCODER = "spacy_wnut.HFEncoder.v1"
NEW_SPAN_GETTERS = {"spacy-transformers.strided_spans.v1": "spacy_wnut.strided_spans.v1"}
# Settings of the old encoder that the new one takes; `tokenizer_config` goes (the saved tokenizer is used).
KEPT = ("name", "get_spans", "mixed_precision", "grad_scaler_config", "transformer_config")
PROBE_TEXTS = (
    "Watching Game of Thrones with @paulwalk in NYC",
    "Tom Hanks and Apple Inc. were in New York on Monday",
    "new iphone from apple is out , going to the #applestore on 5th ave tomorrow",
)


@dataclass
class Migration:
    """What `migrate_pipeline` did.

    output (Path): the migrated pipeline's directory.
    components (List[str]): the components whose encoder was migrated.
    probes (int): texts on which old and new gave the same entities and scores.
    """

    output: Path
    components: List[str] = field(default_factory=list)
    probes: int = 0


def legacy_components(nlp: Language) -> List[str]:
    """The components whose config names spacy-transformers' encoder."""
    names = []
    for name in nlp.pipe_names:
        model = nlp.config["components"][name].get("model", {})
        transformer = model.get("transformer", {}) if isinstance(model, dict) else {}
        if isinstance(transformer, dict) and transformer.get("@architectures") == LEGACY_ENCODER:
            names.append(name)
    return names


def migrated_config(nlp: Language, names: Iterable[str]):
    """`nlp`'s config with each named component's encoder block in the 0.4 form."""
    config = nlp.config.copy()
    for name in names:
        old = config["components"][name]["model"]["transformer"]
        new = {"@architectures": NEW_ENCODER, **{key: old[key] for key in KEPT if key in old}}
        getter = dict(new.get("get_spans", {}))
        if getter.get("@span_getters") in NEW_SPAN_GETTERS:
            getter["@span_getters"] = NEW_SPAN_GETTERS[getter["@span_getters"]]
        elif getter.get("@span_getters") in LEGACY_SPAN_GETTERS:
            raise ConfigError(
                f"[components.{name}.model.transformer.get_spans] {getter['@span_getters']} has no spacy-wnut "
                "equivalent; use spacy_wnut.strided_spans.v1"
            )
        new["get_spans"] = getter
        config["components"][name]["model"]["transformer"] = new
    return config


def migrate_pipeline(
    old: Union[str, Path], new: Union[str, Path], *, overwrite: bool = False, probes: Iterable[str] = PROBE_TEXTS
) -> Migration:
    """Save the pipeline `old` (spacy-wnut 0.2/0.3) in the 0.4 format at `new`, checked on `probes`.

    old (Union[str, Path]): the old pipeline's directory or package name.
    new (Union[str, Path]): the directory to write (atomically).
    overwrite (bool): replace an existing `new`.
    probes (Iterable[str]): texts on which the two must agree.
    RETURNS (Migration): what was migrated and checked.
    """
    require("migrate", TRAIN_PACKAGES, "train")
    if spacy_transformers_installed():
        raise ConfigError(
            "spacy-transformers is installed here, so its names are its own: migrate in an environment without it "
            "(pip uninstall spacy-transformers)"
        )
    check_output(new, [old] if Path(str(old)).exists() else [], overwrite=overwrite, kind=DIRECTORY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacyEncoderWarning)
        nlp = load_pipeline(old)
    names = legacy_components(nlp)
    if not names:
        raise InputError(str(old), f"no component's encoder is {LEGACY_ENCODER}: it is in the 0.4 format already")
    config = migrated_config(nlp, names)
    for name in names:
        nlp.get_pipe(name).cfg.pop("layer_norm_eps", None)  # 0.3's workaround; the config is exact now
    nlp.meta["requirements"] = [r for r in nlp.meta.get("requirements", []) if not r.startswith("spacy-transformers")]
    texts = list(probes)
    with atomic_path(new) as tmp:
        nlp.to_disk(tmp)
        config.to_disk(Path(tmp) / "config.cfg")
        _check_same(nlp, load_pipeline(tmp), names, texts, new)
    return Migration(Path(new), names, len(texts))


def _check_same(old: Language, new: Language, names: List[str], texts: List[str], path) -> None:
    """Raise unless `new` gives exactly `old`'s entities (and the same scores within float error)."""
    key = "_spacy_wnut_migrate"
    for nlp in (old, new):
        for name in names:
            nlp.get_pipe(name).spans_key = key
    for before, after in zip(old.pipe(texts), new.pipe(texts)):
        same = [(e.start, e.end, e.label_) for e in before.ents] == [(e.start, e.end, e.label_) for e in after.ents]
        if not same or not numpy.allclose(
            before.spans[key].attrs["scores"], after.spans[key].attrs["scores"], atol=1e-5
        ):
            raise RuntimeError(f"{path}: the migrated pipeline predicts otherwise than the old one on {before.text!r}")


def summary_line(migration: Migration, old: Optional[str] = None) -> str:
    """One line for the CLI."""
    return (
        f"migrated {', '.join(migration.components)} to {NEW_ENCODER} (safetensors weights): {migration.output}; "
        f"same entities and scores as {old or 'the old pipeline'} on {migration.probes} probe texts"
    )
