"""`export-runtime`, `package-meta`, `migrate`: pipelines made ready to ship."""

from pathlib import Path
from typing import Optional

from ._util import (
    Arg,
    CodeOpt,
    ComponentOpt,
    ModelArg,
    Opt,
    OverwriteOpt,
    app,
    console,
    import_code,
    user_errors,
)


@app.command("export-runtime")
@user_errors
def export_runtime_cmd(
    pipeline: ModelArg,
    output: Path = Arg(..., help="directory for the run-time pipeline"),
    int8: bool = Opt(False, "--int8/--fp32", help="an int8 graph (smaller, faster; check its F1) or fp32"),
    component: ComponentOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """A run-time pipeline of a trained one: ONNX Runtime + tokenizers, no torch, transformers or spacy-transformers."""
    from ..tools.runtime_export import export_runtime

    done = export_runtime(pipeline, output, int8=int8, component=component, overwrite=overwrite)
    print(
        f"wrote {done.output}: [{done.component}] {done.graph} ONNX graph ({done.onnx_bytes / 1e6:.1f} MB) "
        f"from {done.source}; it loads with spacy.load and needs only `pip install spacy-wnut`"
    )


@app.command("package-meta")
@user_errors
def package_meta_cmd(
    model: Path = Arg(..., help="the pipeline to package"),
    scores: Path = Arg(..., help="its test scores: `evaluate --output` JSON"),
    output: Path = Arg(..., help="meta.json to write, for `spacy package --meta-path` (- for stdout)"),
    name: str = Opt("wnut_ner", "--name", help="package name (spaCy adds the language: en_wnut_ner)"),
    version: str = Opt("0.1.0", "--version"),
    backbone: Optional[str] = Opt(None, "--backbone", help="the backbone's name, as users know it"),
    component: ComponentOpt = None,
    code: CodeOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """meta.json for `spacy package`: WNUT 17 test scores, backbone, data source, licence, requirements."""
    from ..tools.model_card import write_package_meta

    import_code(code)
    write_package_meta(
        model, scores, output, name=name, version=version, backbone=backbone, component=component, overwrite=overwrite
    )
    print(f"wrote {output}", file=console(output))


@app.command("migrate")
@user_errors
def migrate_cmd(
    old: str = Arg(..., help="pipeline saved by spacy-wnut 0.3 or earlier (directory or package name)"),
    new: Path = Arg(..., help="directory for the pipeline in the 0.4 format"),
    overwrite: OverwriteOpt = False,
) -> None:
    """A 0.2/0.3 pipeline (spacy-transformers' encoder) in the 0.4 format: own encoder, safetensors weights."""
    from ..tools.migrate import migrate_pipeline, summary_line

    print(summary_line(migrate_pipeline(old, new, overwrite=overwrite), old))
