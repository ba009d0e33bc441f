"""`export-runtime`: a trained pipeline as a run-time pipeline that needs no torch, transformers or
spacy-transformers (`spacy_wnut.OnnxTagger.v1`: an ONNX graph, the fast tokenizer, the head).

Building it needs the training stack (`[train]`: the graph is exported from
the PyTorch encoder); loading and running it needs only the run-time install.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from spacy import util
from spacy.language import Language
from thinc.api import Config

from ..data.outputs import atomic_path, check_output
from ..errors import ConfigError
from ..ml.encoding import model_encoding
from ..ml.head import encoder_width, head_weights
from ..ml.onnx_tagger import OnnxEncoder, set_runtime_weights
from ..pipeline.component import find_wnut_pipe, load_pipeline
from ..pipeline.engines import export_onnx

STRIDED_GETTERS = ("spacy_wnut.strided_spans.v1", "spacy-transformers.strided_spans.v1")
RUNTIME_META_KEY = "spacy_wnut_runtime"
TRAIN_ONLY = ("spacy-transformers", "spacy_transformers", "transformers", "torch")


@dataclass
class RuntimeExport:
    """What `export_runtime` wrote."""

    output: Path
    component: str
    graph: str
    onnx_bytes: int
    source: str


def runtime_config(config: Config, name: str, int8: bool) -> Config:
    """The source pipeline's config with `name`'s model replaced by `spacy_wnut.OnnxTagger.v1`.

    Only strided windows (`strided_spans.v1`) can be carried over; any other span getter is refused.
    """
    config = config.copy()
    component = config["components"][name]
    model = component["model"]
    if "transformer" not in model:
        raise ConfigError(f"[{name}] the model has no transformer to export (is it a run-time pipeline already?)")
    spans = model["transformer"].get("get_spans", {})
    if spans.get("@span_getters") not in STRIDED_GETTERS:
        raise ConfigError(
            f"[components.{name}.model.transformer.get_spans] the run-time pipeline reads strided windows only "
            f"({', '.join(STRIDED_GETTERS)}), got {spans.get('@span_getters')!r}"
        )
    component["model"] = {
        "@architectures": "spacy_wnut.OnnxTagger.v1",
        "window": spans["window"],
        "stride": spans["stride"],
        "casing_features": bool(model.get("casing_features", False)),
        "token_features": model.get("token_features"),
        "nO": None,
    }
    component["engine"] = "onnx-int8" if int8 else "onnx"
    component["store_trf_data"] = False
    return config


def build_runtime(nlp: Language, name: Optional[str] = None, *, int8: bool = False) -> Language:
    """A run-time copy of a trained pipeline: same vocab, tokenizer, labels, options and other components.

    nlp (Language): a pipeline with a trained `wnut_ner` (a `SubwordTagger`).
    name (Optional[str]): the component, if the pipeline has several.
    int8 (bool): quantise the graph to int8 (per-channel dynamic), else fp32.
    RETURNS (Language): the run-time pipeline (not saved).
    """
    name, pipe = find_wnut_pipe(nlp, name)
    if pipe.is_runtime:
        raise ConfigError(f"[{name}] this is a run-time pipeline already: export from the pipeline it came from")
    if not pipe.is_initialized():
        raise ConfigError(f"[{name}] the component is not trained: there is nothing to export")
    tokenizer, _ = model_encoding(pipe.model)
    if tokenizer is None:
        raise ConfigError(f"[{name}] the encoder has no tokenizer loaded: there is nothing to export")
    config = runtime_config(nlp.config, name, int8)
    runtime = util.load_model_from_config(config, auto_fill=False, validate=True)
    runtime.vocab.from_bytes(nlp.vocab.to_bytes())
    runtime.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
    for other, component in nlp.pipeline:
        if other != name and hasattr(component, "to_bytes"):
            runtime.get_pipe(other).from_bytes(component.to_bytes())
    target = runtime.get_pipe(name)
    target.cfg = dict(pipe.cfg)
    W, b = head_weights(pipe.model)
    model = pipe.model
    features = model.get_ref("token_features").to_bytes() if model.has_ref("token_features") else None
    encoder = OnnxEncoder(export_onnx(model, quantize=int8), tokenizer.to_json(), tokenizer.settings(), int8)
    casing = model.ops.to_numpy(model.get_param("casing_W")) if model.attrs["casing_features"] else None
    set_runtime_weights(target.model, encoder, W, b, encoder_width(model), casing, features)
    backbone = str(model.get_ref("transformer").attrs["name"])
    graph = "int8" if int8 else "fp32"
    runtime.meta = {**nlp.meta, RUNTIME_META_KEY: {"graph": graph, "component": name, "backbone": backbone}}
    # What `spacy package` found the source to need (torch, transformers) is not needed here.
    runtime.meta["requirements"] = [r for r in nlp.meta.get("requirements", []) if not r.startswith(TRAIN_ONLY)]
    return runtime


def export_runtime(
    pipeline: Union[str, Path],
    output: Union[str, Path],
    *,
    int8: bool = False,
    component: Optional[str] = None,
    overwrite: bool = False,
) -> RuntimeExport:
    """Build the run-time pipeline of a trained one and save it (atomically) to `output`.

    pipeline (Union[str, Path]): the trained pipeline (directory or package name).
    output (Union[str, Path]): the directory to write.
    int8 (bool): an int8 graph instead of fp32.
    component (Optional[str]): the `wnut_ner` component, if there are several.
    overwrite (bool): replace an existing `output`.
    RETURNS (RuntimeExport): what was written.
    """
    output = check_output(output, [pipeline], overwrite=overwrite)
    nlp = load_pipeline(pipeline)
    runtime = build_runtime(nlp, component, int8=int8)
    name, pipe = find_wnut_pipe(runtime, component)
    runtime.meta[RUNTIME_META_KEY]["source"] = str(pipeline)
    with atomic_path(output) as tmp:
        runtime.to_disk(tmp)
    graph = pipe.model.attrs["onnx_encoder"]
    return RuntimeExport(Path(output), name, "int8" if int8 else "fp32", len(graph.onnx_bytes), str(pipeline))


def runtime_info(nlp: Language) -> Optional[Dict[str, Any]]:
    """What the pipeline's meta says of its run-time export (None for a trainable pipeline)."""
    return nlp.meta.get(RUNTIME_META_KEY)
