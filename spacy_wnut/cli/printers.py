"""Everything the commands print: score tables and the summaries the library functions return."""

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

_LISTED = 20  # line numbers listed in a summary, per reason


def prf_table(rows, first: str = "", extra: tuple = ()) -> str:
    """The one P/R/F1 table every command prints: rows of (name, P, R, F1, *extra columns)."""
    from wasabi import table

    data = [(name, f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", *more) for name, p, r, f, *more in rows]
    aligns = ("l", "r", "r", "r") + ("r",) * len(extra)
    return table(data, header=(first, "P", "R", "F1", *extra), divider=True, aligns=aligns)


def score_rows(spacy_scores, seqeval) -> list:
    """Rows for `prf_table`: both scorers overall, then seqeval per type (with support).

    Without seqeval (a run-time install, no `[train]`), spaCy's scorer overall and per type.
    """
    if "f" not in seqeval:
        rows = [("spaCy scorer (no seqeval: pip install 'spacy-wnut[train]')", *_prf(spacy_scores, "ents_"), "")]
        per_type = spacy_scores["ents_per_type"] or {}
        return rows + [(f"  {label}", *_prf(row), "") for label, row in sorted(per_type.items())]
    total = sum(row["support"] for row in seqeval["per_type"].values())
    rows = [
        ("spaCy scorer", spacy_scores["ents_p"], spacy_scores["ents_r"], spacy_scores["ents_f"], total),
        ("seqeval", seqeval["p"], seqeval["r"], seqeval["f"], total),
    ]
    for label, row in sorted(seqeval["per_type"].items()):
        rows.append((f"  {label}", row["p"], row["r"], row["f"], row["support"]))
    return rows


def _prf(scores, prefix: str = "") -> tuple:
    return scores[f"{prefix}p"], scores[f"{prefix}r"], scores[f"{prefix}f"]


def print_conversion(summary, out: TextIO = None, max_repairs: int = 20) -> None:
    """What a conversion wrote, and every kind of repair (the first `max_repairs` located)."""
    out = out or sys.stdout
    print(
        f"✔ {summary.source} -> {summary.output}: {summary.docs} docs, {summary.sentences} sentences, "
        f"{summary.tokens} tokens, {sum(summary.entities.values())} entities",
        file=out,
    )
    if summary.entities:
        from wasabi import table

        print(table(sorted(summary.entities.items()), header=("entity type", "count"), divider=True), file=out)
    if summary.tab_separators:
        print(f"ℹ {summary.tab_separators} sentence separators were lines holding only a tab", file=out)
    if summary.byte_order_mark:
        print("ℹ the UTF-8 byte-order mark opening the file was removed (it is no part of the first token)", file=out)
    if getattr(summary, "docstarts", 0):
        print(f"ℹ {summary.docstarts} -DOCSTART- line(s) (document markers, not tokens) were left out", file=out)
    if summary.repairs:
        print(f"⚠ {len(summary.repairs)} repairs (use --strict to make them errors):", file=out)
        for repair in summary.repairs[:max_repairs]:
            print(f"  {repair.where}: {repair.problem}", file=out)
        if len(summary.repairs) > max_repairs:
            print(f"  ... and {len(summary.repairs) - max_repairs} more", file=out)
    else:
        print("ℹ no repairs", file=out)


def print_annotation(summary, out: TextIO = None) -> None:
    """Docs in/out, skipped lines by reason (with line numbers), blank lines, renamed fields, entities."""
    out = out or sys.stdout
    if summary.resumed_after is not None:
        source, line = summary.resumed_after
        print(f"resumed after {source}:{line} ({summary.already_done} docs were already written)", file=out)
    print(f"docs in: {summary.docs_in}, docs out: {summary.docs_out}", file=out)
    for reason, count in summary.skipped.items():
        lines = ", ".join(map(str, summary.skipped_lines[reason]))
        more = " ..." if count > len(summary.skipped_lines[reason]) else ""
        print(f"skipped {count} line(s), {reason}: line {lines}{more}", file=out)
    if summary.blank_lines:
        listed = ", ".join(map(str, summary.blank_lines[:_LISTED]))
        more = " ..." if len(summary.blank_lines) > _LISTED else ""
        print(f"blank lines (no doc): {len(summary.blank_lines)}: line {listed}{more}", file=out)
    for name, count in summary.renamed_fields.items():
        print(f"input field {name!r} renamed to 'input_{name}' in {count} record(s) (it is an output field)", file=out)
    if summary.entities:
        print("entities: " + ", ".join(f"{label} {n}" for label, n in summary.entities.most_common()), file=out)
    for output in summary.outputs:
        print(f"wrote {output}", file=out)


def print_task_export(summary) -> None:
    """What was read (as `annotate` says it), how uncertain it was, what was selected and written."""
    outputs, summary.outputs = summary.outputs, []
    print_annotation(summary)
    summary.outputs = outputs
    if summary.docs_out:
        print(f"uncertainty (1 - lowest token margin): mean {summary.uncertainty_sum / summary.docs_out:.3f} over all")
    if summary.selected_uncertainties:
        values = summary.selected_uncertainties
        print(
            f"selected {summary.selected} of {summary.docs_out} ({summary.selection}): uncertainty "
            f"{min(values):.3f} to {max(values):.3f}, mean {sum(values) / len(values):.3f}"
        )
    for output in summary.outputs:
        print(f"wrote {output}")


def print_task_import(summary, listed: int = 5) -> None:
    """What was read and written; every skip and repair, counted, its first places listed."""
    from wasabi import msg

    report = summary.report
    print(
        f"✔ {summary.source} ({summary.format}) -> {summary.output}: {summary.tasks} tasks, {summary.docs} docs, "
        f"{summary.tokens} tokens, {sum(summary.entities.values())} entities"
    )
    if summary.entities:
        msg.table(sorted(summary.entities.items()), header=("entity type", "count"), divider=True)
    for title, counts, places in (
        ("skipped", report.skipped, report.skipped_where),
        ("repaired or chosen by rule", report.repairs, report.repair_where),
    ):
        for kind, count in counts.items():
            print(f"{title}: {count} × {kind}")
            for place in places[kind][:listed]:
                print(f"  {place}")
            if count > min(listed, len(places[kind])):
                print(f"  ... and {count - min(listed, len(places[kind]))} more")
    if not report.repairs:
        msg.info("no repairs")


def print_ray_summary(summary) -> None:
    """Files and records in/out/errors (and the check that they add up), entities, timings."""
    from ..tools.distributed import ERRORS_DIR

    ignored = f"; left out (hidden or _-named): {', '.join(summary.ignored_files)}" if summary.ignored_files else ""
    print(f"input files: {summary.input_files}{ignored}")
    print(
        f"records in: {summary.records_in}, written: {summary.records_out}, error records: {summary.error_records} "
        f"({'adds up' if summary.balanced else 'DOES NOT ADD UP'}); blank lines: {summary.blank_lines}"
    )
    for reason, count in summary.errors.items():
        print(f"error records, {reason}: {count}")
    if summary.entities:
        print("entities: " + ", ".join(f"{label} {n}" for label, n in summary.entities.most_common()))
    print(
        f"{summary.actors} actor(s), {summary.batches} batches; start-up {summary.startup_seconds:.1f}s, "
        f"pipeline load {summary.model_load_seconds:.1f}s per actor, run {summary.run_seconds:.1f}s"
    )
    for output in summary.outputs:
        print(f"wrote {output} (errors in {Path(output) / ERRORS_DIR})")


def print_evaluation(result: Dict[str, Any], output: Optional[Path], out: TextIO) -> None:
    """`evaluate`: both scorers' table, then docs, time, unscorable entities and alignment counts."""
    print(prf_table(score_rows(result["spacy"], result["seqeval"]), "scorer / type", ("support",)), file=out)
    print(
        f"{result['docs']} docs in {result['seconds']:.1f}s; "
        f"unscorable predicted entities: {result['unscorable_predicted_entities']}; "
        f"alignment: {result['alignment_stats']}",
        file=out,
    )
    if output is not None:
        print(f"wrote {output}", file=out)


def print_report(report, output: Path, out: TextIO) -> None:
    """`report`: what the page shows first (the scores and the worst sentence)."""
    print(f"{report.n_docs} docs", file=out)
    print(prf_table(score_rows(report.spacy_scores, report.seqeval), "scorer / type", ("support",)), file=out)
    if report.worst:
        errors, example = report.worst[0]
        print(f"worst sentence: {errors} entity error(s): {example.reference.text[:80]}", file=out)
    print(f"wrote {output}", file=out)


def print_tuning(best, scores: List, calibration: Dict[str, Any], output: Path) -> None:
    """`tune-bias`: dev scores per `entity_bias`, the chosen one, and the fitted temperature."""
    rows = [(f"{s.bias:g}", s.p, s.r, s.f, "<- best" if s == best else "") for s in scores]
    print(prf_table(rows, "entity_bias", ("",)))
    print(
        f"wrote {output} with entity_bias = {best.bias:g} (dev F1 {best.f:.4f}, "
        f"{best.f - scores[0].f:+.4f} over entity_bias = {scores[0].bias:g}) and temperature = "
        f"{calibration['after']['temperature']:.3f} (dev ECE of the entity probabilities "
        f"{calibration['before']['ece']:.3f} -> {calibration['after']['ece']:.3f})"
    )


def print_soft_targets(manifest: Dict[str, Any], directory: Path, student_config: Optional[Path]) -> None:
    """`distill`: the soft targets written (or reused), per input, with bad lines located; the student."""
    from ..training.distill import summarize

    teacher = manifest["teacher"]
    how = "reused (same teacher files and inputs)" if manifest.get("reused") else "written"
    print(f"soft targets in {directory}: {how}; teacher {teacher['pipeline']} (engine {teacher['engine']})")
    for line in summarize(manifest):
        print(f"  {line}")
    for given in manifest["inputs"]:
        for located in given.get("bad_lines_listed", []):
            print(f"  skipped {located}")
        if given.get("bad_lines", 0) > len(given.get("bad_lines_listed", [])):
            print(f"  ... and {given['bad_lines'] - len(given['bad_lines_listed'])} more bad lines in {given['path']}")
    if student_config is not None:
        print(f"student trained from {student_config}: {student_config.parent / 'model-best'}")
