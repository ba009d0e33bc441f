"""Output safety: atomic replacement, never an input as output, clear reasons for paths that cannot be written."""

import os

import pytest

from spacy_wnut.data.outputs import atomic_path, check_output
from spacy_wnut.errors import OutputError


def test_atomic_path_replaces_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("earlier result")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("stopped")
    assert target.read_text() == "earlier result"
    assert os.listdir(tmp_path) == ["result.txt"]
    with atomic_path(target) as tmp:
        tmp.write_text("new result")
    assert target.read_text() == "new result" and os.listdir(tmp_path) == ["result.txt"]


def test_atomic_path_replaces_a_directory_whole(tmp_path):
    target = tmp_path / "shards"
    target.mkdir()
    (target / "old.spacy").write_text("stale")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.spacy").write_text("fresh")
    assert os.listdir(target) == ["new.spacy"]


def test_the_input_is_never_the_output_even_through_a_link(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(source)
    for output in (source, tmp_path / "link.jsonl", tmp_path / "." / "in.jsonl"):
        with pytest.raises(OutputError, match="the output is the input"):
            check_output(output, [source])
    assert source.read_text() == "{}\n"


def test_an_output_inside_an_input_directory_is_refused(tmp_path):
    (tmp_path / "corpus").mkdir()
    with pytest.raises(OutputError, match="inside the input"):
        check_output(tmp_path / "corpus" / "out.jsonl", [tmp_path / "corpus"])


def test_a_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputError, match=r"plain is a file, not a directory"):
        check_output(tmp_path / "plain" / "deeper" / "out.json")


def test_an_existing_output_needs_overwrite(tmp_path):
    (tmp_path / "out.jsonl").write_text("kept")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        check_output(tmp_path / "out.jsonl", overwrite=False)
    assert check_output(tmp_path / "out.jsonl", overwrite=True) == tmp_path / "out.jsonl"
