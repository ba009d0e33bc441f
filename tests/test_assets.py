"""Fetching the WNUT 17 files: checksums verified, mirror first."""
import pytest

from spacy_wnut.assets import WNUT17_ASSETS, Asset, fetch_asset, fetch_wnut17, sha256sum


def test_fetch_from_mirror_verifies_and_skips_when_up_to_date(wnut_mirror, tmp_path, capsys):
    paths = fetch_wnut17(tmp_path, mirror=wnut_mirror)
    assert sorted(paths) == ["dev", "test", "train"]
    for split, path in paths.items():
        assert sha256sum(path) == WNUT17_ASSETS[split].sha256
    fetch_wnut17(tmp_path, mirror=wnut_mirror)
    assert capsys.readouterr().out.count("is up to date") == 3


def test_checksum_mismatch_is_an_error_and_leaves_no_file(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "x.conll").write_text("a\tO\n")
    asset = Asset("x.conll", "https://example.invalid/x.conll", "0" * 64)
    with pytest.raises(ValueError, match="x.conll: sha256 is .* expected 0000"):
        fetch_asset(asset, tmp_path / "dest", mirror)
    assert not list((tmp_path / "dest").iterdir())
