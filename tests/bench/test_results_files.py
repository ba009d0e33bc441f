"""Where the benchmark scripts write their results."""

from pathlib import Path

import pytest

from ..util import bench_module

results_files = bench_module("results_files")


def test_results_path_keeps_every_dot_of_the_stem(tmp_path):
    stem = tmp_path / "2026-12-04-sweep-a0.5-T1"
    assert results_path_names(stem) == ["2026-12-04-sweep-a0.5-T1.json", "2026-12-04-sweep-a0.5-T1.md"]
    assert results_files.results_path(Path("plain"), ".json") == Path("plain.json")


def results_path_names(stem: Path):
    return [results_files.results_path(stem, extension).name for extension in (".json", ".md")]


def test_write_results_writes_both_files_under_a_new_folder(tmp_path, capsys):
    stem = tmp_path / "new" / "study-a0.5"
    results_files.write_results(stem, {"f": 0.5, "path": tmp_path}, "| a |\n")
    assert (tmp_path / "new" / "study-a0.5.md").read_text() == "| a |\n"
    assert '"path": "' + str(tmp_path) + '"' in (tmp_path / "new" / "study-a0.5.json").read_text()
    assert "| a |" in capsys.readouterr().out


def test_write_results_replaces_a_file_only_once_it_is_whole(tmp_path):
    stem = tmp_path / "study"
    results_files.write_results(stem, {"f": 0.5}, "| old |\n", chart=lambda path: path.write_bytes(b"old"))

    def broken_chart(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("stopped while drawing")

    with pytest.raises(RuntimeError, match="stopped while drawing"):
        results_files.write_results(stem, {"f": 0.6}, "| new |\n", chart=broken_chart)
    assert (tmp_path / "study.png").read_bytes() == b"old" and (tmp_path / "study.md").read_text() == "| new |\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["study.json", "study.md", "study.png"]
