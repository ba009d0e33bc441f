"""Command line: `python -m spacy_wnut {fetch,convert,convert-hf,evaluate,tune-bias,import-hf,export-hf,annotate,report} ...`. Thin: parses, calls the library."""
import argparse
import sys
from typing import List, Optional

from .conll import WNUT17_LABELS, InputError


def _fetch(args: argparse.Namespace) -> None:
    from .assets import fetch_wnut17

    fetch_wnut17(args.dest, mirror=args.mirror)


def _convert(args: argparse.Namespace) -> None:
    from .convert import convert_conll, print_summary

    labels = None if args.any_label else WNUT17_LABELS
    summary = convert_conll(
        args.input, args.output, n_sents=args.n_sents, labels=labels,
        strict=args.strict, progress=not args.no_progress,
    )
    print_summary(summary)


def _convert_hf(args: argparse.Namespace) -> None:
    import datasets

    from .convert import convert_hf_dataset, print_summary

    dataset = datasets.load_dataset(args.dataset, args.config)
    summaries = convert_hf_dataset(
        dataset, args.output, n_sents=args.n_sents, tokens_column=args.tokens_column,
        tags_column=args.tags_column, strict=args.strict, progress=not args.no_progress,
    )
    for summary in summaries.values():
        print_summary(summary)


def _evaluate(args: argparse.Namespace) -> None:
    import time

    import spacy
    import srsly
    from wasabi import msg

    from .scoring import evaluate

    nlp = spacy.load(args.model)
    start = time.perf_counter()
    result = evaluate(nlp, args.data, gold_preproc=not args.no_gold_preproc,
                      batch_size=args.batch_size, progress=not args.no_progress)
    result["seconds"] = time.perf_counter() - start
    result["alignment_stats"] = {
        name: dict(pipe.alignment_stats)
        for name, pipe in nlp.pipeline if hasattr(pipe, "alignment_stats")
    }
    spacy_scores, seq = result["spacy"], result["seqeval"]
    rows = [("spaCy scorer", spacy_scores["ents_p"], spacy_scores["ents_r"], spacy_scores["ents_f"]),
            ("seqeval", seq["p"], seq["r"], seq["f"])]
    msg.table([(n, f"{p:.4f}", f"{r:.4f}", f"{f:.4f}") for n, p, r, f in rows],
              header=("scorer", "P", "R", "F1"), divider=True)
    per_type = [(label, f"{s['p']:.4f}", f"{s['r']:.4f}", f"{s['f']:.4f}", s["support"])
                for label, s in sorted(seq["per_type"].items())]
    msg.table(per_type, header=("type (seqeval)", "P", "R", "F1", "support"), divider=True)
    print(f"{result['docs']} docs in {result['seconds']:.1f}s; "
          f"unscorable predicted entities: {result['unscorable_predicted_entities']}; "
          f"alignment: {result['alignment_stats']}")
    if args.output:
        srsly.write_json(args.output, result)
        print(f"wrote {args.output}")


def _tune_bias(args: argparse.Namespace) -> None:
    import spacy
    from wasabi import msg

    from .tune import tune_entity_bias

    grid = [float(x) for x in args.grid.split(",")] if args.grid else None
    nlp = spacy.load(args.model)
    kwargs = {"grid": grid} if grid is not None else {}
    best, scores = tune_entity_bias(nlp, args.dev, name=args.component,
                                    gold_preproc=not args.no_gold_preproc, **kwargs)
    msg.table([(f"{s.bias:g}", f"{s.p:.4f}", f"{s.r:.4f}", f"{s.f:.4f}", "<- best" if s == best else "")
               for s in scores], header=("entity_bias", "P", "R", "F1", ""), divider=True)
    tuned = spacy.load(args.model, config={"components": {args.component: {"entity_bias": best.bias}}})
    tuned.to_disk(args.output)
    print(f"wrote {args.output} with entity_bias = {best.bias:g} (dev F1 {best.f:.4f}, "
          f"{best.f - scores[0].f:+.4f} over entity_bias = {scores[0].bias:g})")


def _import_hf(args: argparse.Namespace) -> None:
    from .hf_checkpoint import from_hf

    nlp = from_hf(args.checkpoint, scheme=args.scheme, lang=args.lang)
    nlp.to_disk(args.output)
    pipe = nlp.get_pipe("wnut_ner")
    print(f"wrote {args.output}: {pipe.head.kind} tags {list(pipe.head.tags)} -> labels {list(pipe.labels)}")


def _export_hf(args: argparse.Namespace) -> None:
    from .hf_checkpoint import export_hf

    out = export_hf(args.pipeline, args.output, name=args.component)
    print(f"wrote {out}: load it with AutoModelForTokenClassification.from_pretrained or pipeline('ner')")


def _annotate(args: argparse.Namespace) -> None:
    from .annotate import annotate, print_summary

    summary = annotate(
        args.model, args.input, args.output, input_format=args.input_format,
        output_format=args.output_format, batch_size=args.batch_size, n_process=args.n_process,
        skip_bad_lines=args.skip_bad_lines, progress=not args.no_progress,
    )
    print_summary(summary)


def _report(args: argparse.Namespace) -> None:
    from pathlib import Path

    import spacy

    from .report import build_report, predict_examples, render_html, summary_text

    nlp = spacy.load(args.model)
    report = build_report(predict_examples(nlp, args.data), n_worst=args.worst)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(render_html(report, title=f"{args.model} on {args.data}"), encoding="utf-8")
    print(summary_text(report))
    print(f"wrote {args.output}")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser, one sub-command per library entry point."""
    parser = argparse.ArgumentParser(prog="python -m spacy_wnut", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch", help="fetch the WNUT 17 files, checksums verified")
    fetch.add_argument("dest", help="directory to put the files in")
    fetch.add_argument("--mirror", default=None, help="local directory holding copies (used first)")
    fetch.set_defaults(func=_fetch)

    def add_common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--n-sents", type=int, default=1, help="sentences per doc (default 1)")
        sub.add_argument("--strict", action="store_true", help="make repairs errors")
        sub.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    convert = commands.add_parser("convert", help="WNUT-style CoNLL -> .spacy DocBin")
    convert.add_argument("input", help="CoNLL file: TOKEN<TAB>TAG lines, IOB2")
    convert.add_argument("output", help="output .spacy file")
    convert.add_argument("--any-label", action="store_true",
                         help="accept any entity type, not only WNUT 17's six")
    add_common(convert)
    convert.set_defaults(func=_convert)

    convert_hf = commands.add_parser("convert-hf", help="HF token-classification dataset -> DocBins")
    convert_hf.add_argument("dataset", help="hub name or local path for datasets.load_dataset")
    convert_hf.add_argument("output", help="directory: one <split>.spacy per split")
    convert_hf.add_argument("--config", default=None, help="dataset configuration name")
    convert_hf.add_argument("--tokens-column", default="tokens")
    convert_hf.add_argument("--tags-column", default="ner_tags")
    add_common(convert_hf)
    convert_hf.set_defaults(func=_convert_hf)

    evaluate = commands.add_parser("evaluate", help="spaCy and seqeval entity scores of a pipeline")
    evaluate.add_argument("model", help="pipeline name or directory")
    evaluate.add_argument("data", help=".spacy DocBin with gold entities")
    evaluate.add_argument("--output", default=None, help="write all scores as JSON here")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--no-gold-preproc", action="store_true",
                          help="predict on spaCy's own tokenization of the text instead of the gold tokens")
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.set_defaults(func=_evaluate)

    tune = commands.add_parser("tune-bias", help="pick the component's entity_bias on a dev set")
    tune.add_argument("model", help="trained pipeline name or directory")
    tune.add_argument("dev", help=".spacy DocBin with gold entities (dev, never test)")
    tune.add_argument("output", help="directory for the pipeline with the chosen entity_bias")
    tune.add_argument("--grid", default=None, help="comma-separated values to try (default 0..3)")
    tune.add_argument("--component", default="wnut_ner", help="name of the wnut_ner component")
    tune.add_argument("--no-gold-preproc", action="store_true")
    tune.set_defaults(func=_tune_bias)

    imp = commands.add_parser("import-hf", help="HF token-classification checkpoint -> spaCy pipeline (no training)")
    imp.add_argument("checkpoint", help="hub name or local checkpoint directory")
    imp.add_argument("output", help="directory for the spaCy pipeline")
    imp.add_argument("--scheme", default="auto", help="tag scheme: auto, IOB2, IOB1, BIOES, BILOU or plain")
    imp.add_argument("--lang", default="en", help="language of the blank spaCy pipeline")
    imp.set_defaults(func=_import_hf)

    exp = commands.add_parser("export-hf", help="trained pipeline -> HF token-classification checkpoint")
    exp.add_argument("pipeline", help="spaCy pipeline name or directory")
    exp.add_argument("output", help="directory for the checkpoint")
    exp.add_argument("--component", default="wnut_ner", help="name of the wnut_ner component")
    exp.set_defaults(func=_export_hf)

    ann = commands.add_parser("annotate", help="tag text, JSONL or DocBin; write JSONL, DocBin shards or HTML")
    ann.add_argument("model", help="trained pipeline name or directory")
    ann.add_argument("input", help=".txt (one doc per line), .jsonl ({'text': ...} + metadata) or .spacy")
    ann.add_argument("output", help=".jsonl, .html, or a .spacy directory (DocBin shards)")
    ann.add_argument("--input-format", choices=["txt", "jsonl", "spacy"], default=None)
    ann.add_argument("--output-format", choices=["jsonl", "spacy", "html"], default=None)
    ann.add_argument("--batch-size", type=int, default=64)
    ann.add_argument("--n-process", type=int, default=1)
    ann.add_argument("--skip-bad-lines", action="store_true",
                     help="skip (and count) bad input lines instead of stopping at the first")
    ann.add_argument("--no-progress", action="store_true")
    ann.set_defaults(func=_annotate)

    rep = commands.add_parser("report", help="HTML evaluation report with charts and the worst sentences")
    rep.add_argument("model", help="trained pipeline name or directory")
    rep.add_argument("data", help=".spacy DocBin with gold entities")
    rep.add_argument("output", help="HTML file to write")
    rep.add_argument("--worst", type=int, default=20, help="how many of the worst sentences to show")
    rep.set_defaults(func=_report)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; returns the exit status (1 on bad input, with the place named)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (InputError, OSError, ValueError, KeyError) as err:
        print(f"✘ {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
