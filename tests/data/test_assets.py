"""The WNUT 17 files: committed in assets/, one list of URLs and checksums, fetching verified."""

import hashlib
from pathlib import Path

import pytest
import srsly

from spacy_wnut.data.assets import WNUT17_ASSETS, Asset, fetch_asset, fetch_wnut17, sha256sum


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


ROOT = Path(__file__).parents[2]


def test_committed_files_match_the_checksums_of_assets_py_and_project_yml():
    project = {Path(a["dest"]).name: a for a in srsly.read_yaml(ROOT / "project.yml")["assets"]}
    assert sorted(project) == sorted(asset.filename for asset in WNUT17_ASSETS.values())
    for asset in WNUT17_ASSETS.values():
        path = ROOT / "assets" / asset.filename
        assert sha256sum(path) == asset.sha256, path
        assert hashlib.md5(path.read_bytes()).hexdigest() == project[asset.filename]["checksum"], path
        assert project[asset.filename]["url"] == asset.url


def test_fetch_keeps_committed_files_without_network(tmp_path, capsys):
    fetch_wnut17(ROOT / "assets")
    assert capsys.readouterr().out.count("is up to date") == 3
