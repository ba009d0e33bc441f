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


def _read_fifo(path, into):
    import threading

    def read():
        with open(path, "rb") as f:
            into.append(f.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_fifo_output_is_written_to_not_replaced(tmp_path):
    import stat

    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    check_output(fifo, overwrite=False)  # a stream does not "exist" as a result would
    received = []
    reader = _read_fifo(fifo, received)
    with atomic_path(fifo) as tmp:
        tmp.write_text("streamed\n")
    reader.join(10)
    assert received == [b"streamed\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_a_character_device_output_is_written_to_not_replaced(tmp_path):
    import stat

    link = tmp_path / "null"
    link.symlink_to(os.devnull)  # /dev/null through a link: a device, never replaced
    check_output(link, overwrite=True)
    with atomic_path(link) as tmp:
        tmp.write_text("discarded\n")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode) and link.is_symlink()


def test_dash_is_stdout(capfd):
    check_output("-", overwrite=False)
    with atomic_path("-") as tmp:
        tmp.write_text("to stdout\n")
    assert capfd.readouterr().out == "to stdout\n"


def test_a_link_is_followed_and_stays_a_link(tmp_path):
    (tmp_path / "real.json").write_text("earlier")
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real.json")
    with pytest.raises(OutputError, match=r"link\.json \(a link to .*real\.json\): already exists; pass --overwrite"):
        check_output(link)
    check_output(link, overwrite=True)
    with atomic_path(link) as tmp:
        tmp.write_text("new")
    assert link.is_symlink() and (tmp_path / "real.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_a_link_to_a_directory_is_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "old").write_text("stale")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with atomic_path(tmp_path / "link") as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("fresh")
    assert (tmp_path / "link").is_symlink() and os.listdir(tmp_path / "real") == ["new"]


def test_a_file_is_never_replaced_by_a_directory_nor_the_reverse(tmp_path):
    (tmp_path / "plain").write_text("kept")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match="plain: is a file, and this command writes a directory"):
        check_output(tmp_path / "plain", overwrite=True, kind="directory")
    with pytest.raises(OutputError, match="folder: is a directory, and this command writes a file"):
        check_output(tmp_path / "folder", overwrite=True, kind="file")
    with pytest.raises(OutputError, match="plain: is a file; it is not replaced by a directory"):
        with atomic_path(tmp_path / "plain") as tmp:
            tmp.mkdir()
    assert (tmp_path / "plain").read_text() == "kept" and (tmp_path / "folder").is_dir()


def test_a_directory_cannot_be_written_to_a_stream(tmp_path):
    with pytest.raises(OutputError, match="is a stream.*writes a directory"):
        check_output("-", kind="directory")


def test_a_full_disk_names_the_output_and_keeps_the_earlier_one(tmp_path):
    import errno

    (tmp_path / "out.json").write_text("earlier")
    with pytest.raises(OutputError, match=r"out\.json: cannot write it: No space left on device \[Errno 28\]"):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert os.listdir(tmp_path) == ["out.json"] and (tmp_path / "out.json").read_text() == "earlier"


def test_errors_name_the_output_not_the_hidden_temporary_file(tmp_path):
    with pytest.raises(OutputError) as caught:
        with atomic_path(tmp_path / "out.spacy") as tmp:
            raise PermissionError(13, "Permission denied", str(tmp))
    assert str(caught.value) == f"{tmp_path / 'out.spacy'}: cannot write it: Permission denied"
