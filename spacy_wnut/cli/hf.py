"""`import-hf` and `export-hf`: Hugging Face token-classification checkpoints in and out."""

from pathlib import Path

from ._util import (
    Arg,
    CodeOpt,
    ComponentOpt,
    Opt,
    OverwriteOpt,
    app,
    import_code,
    user_errors,
)


@app.command("import-hf")
@user_errors
def import_hf_cmd(
    checkpoint: str = Arg(..., help="hub name or local checkpoint directory"),
    output: Path = Arg(..., help="directory for the spaCy pipeline"),
    scheme: str = Opt("auto", "--scheme", help="tag scheme: auto, IOB2, IOB1, BIOES, BILOU or plain"),
    lang: str = Opt("en", "--lang", help="language of the blank spaCy pipeline"),
    component: str = Opt("wnut_ner", "--component", help="name of the component in the new pipeline"),
    overwrite: OverwriteOpt = False,
) -> None:
    """A HF token-classification checkpoint as a spaCy pipeline (no training)."""
    from ..tools.hf_checkpoint import import_hf

    pipe = import_hf(checkpoint, output, scheme=scheme, lang=lang, name=component, overwrite=overwrite)
    print(f"wrote {output}: {pipe.head.kind} tags {list(pipe.head.tags)} -> labels {list(pipe.labels)}")


@app.command("export-hf")
@user_errors
def export_hf_cmd(
    pipeline: str = Arg(..., help="spaCy pipeline directory or package name"),
    output: Path = Arg(..., help="directory for the checkpoint"),
    component: ComponentOpt = None,
    code: CodeOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """A trained component as a HF token-classification checkpoint (safetensors + tokenizer)."""
    from ..tools.hf_checkpoint import export_hf

    import_code(code)
    out = export_hf(pipeline, output, name=component, overwrite=overwrite)
    print(f"wrote {out}: load it with AutoModelForTokenClassification.from_pretrained or pipeline('ner')")
