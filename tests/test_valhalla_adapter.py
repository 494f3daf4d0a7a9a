"""The Valhalla adapter's checks that need no Valhalla: tile stamps, tile folder names, input validation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import valhalla as vh


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    """A stand-in .osm.pbf: the adapter only hashes it here."""
    path = tmp_path / "town.osm.pbf"
    path.write_bytes(b"not really protobuf, but hashable" * 100)
    return path


def _stamp(tile_dir: Path, pbf: Path, sha256: str) -> None:
    tile_dir.mkdir(parents=True)
    (tile_dir / vh.STAMP).write_text(json.dumps({"pbf": str(pbf), "sha256": sha256}))


def test_tile_dir_is_named_after_the_extracts_sha256(extract: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(extract.read_bytes()).hexdigest()
    assert vh.tile_dir_for(extract, tmp_path) == tmp_path / f"tiles-{sha[:16]}"


def test_check_tiles_names_a_missing_folder(extract: Path, tmp_path: Path) -> None:
    missing = tmp_path / "tiles-0123456789abcdef"
    with pytest.raises(ValueError, match=r"tiles-0123456789abcdef does not exist"):
        vh.check_tiles(missing, extract)


def test_check_tiles_names_an_unfinished_build(extract: Path, tmp_path: Path) -> None:
    unfinished = tmp_path / "tiles-unfinished"
    unfinished.mkdir()
    with pytest.raises(ValueError, match=rf"tiles-unfinished has no {vh.STAMP}"):
        vh.check_tiles(unfinished, extract)


def test_check_tiles_names_the_folder_and_field_of_another_extract(extract: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.osm.pbf"
    other.write_bytes(b"another county")
    tile_dir = tmp_path / "tiles-other"
    _stamp(tile_dir, other, hashlib.sha256(other.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match=r"tiles-other was built from another extract.*field 'sha256'") as err:
        vh.check_tiles(tile_dir, extract)
    assert str(other) in str(err.value)


def test_check_tiles_names_a_stamp_without_sha256(extract: Path, tmp_path: Path) -> None:
    tile_dir = tmp_path / "tiles-nosha"
    tile_dir.mkdir()
    (tile_dir / vh.STAMP).write_text(json.dumps({"pbf": str(extract)}))
    with pytest.raises(ValueError, match=rf"tiles-nosha/{vh.STAMP}: field 'sha256' is missing"):
        vh.check_tiles(tile_dir, extract)


def test_check_tiles_accepts_its_own_extract(extract: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(extract.read_bytes()).hexdigest()
    tile_dir = tmp_path / "tiles-ok"
    _stamp(tile_dir, extract, sha)
    assert vh.check_tiles(tile_dir, extract)["sha256"] == sha


def test_build_tiles_reuses_a_complete_folder_without_valhalla(
    extract: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_venv(*args: object, **kwargs: object) -> Path:
        raise AssertionError("a complete tile folder needs no venv")

    monkeypatch.setattr(vh, "ensure_venv", no_venv)
    sha = hashlib.sha256(extract.read_bytes()).hexdigest()
    tile_dir = tmp_path / "root" / f"tiles-{sha[:16]}"
    _stamp(tile_dir, extract, sha)
    assert vh.build_tiles(extract, tmp_path / "root") == tile_dir


def test_build_tiles_refuses_a_folder_stamped_by_another_extract(extract: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(extract.read_bytes()).hexdigest()
    tile_dir = tmp_path / "root" / f"tiles-{sha[:16]}"
    _stamp(tile_dir, tmp_path / "other.osm.pbf", "f" * 64)
    with pytest.raises(ValueError, match=rf"tiles-{sha[:16]} was built from another extract"):
        vh.build_tiles(extract, tmp_path / "root")


def test_missing_python312_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRANCHNET_PYTHON312", raising=False)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setattr(vh.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"python3\.12 is missing"):
        vh.ensure_venv(tmp_path / "root")
    assert not (tmp_path / "root" / "venv").exists()


@pytest.mark.parametrize(
    ("sources", "message"),
    [([(0.0, 91.0)], r"sources\[0\]"), ([(1.0, 2.0, 3.0)], "shape"), ([(np.nan, 52.0)], r"sources\[0\]")],
)
def test_matrix_validates_points_before_valhalla(extract: Path, tmp_path: Path, sources: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vh.matrix(extract, sources, [(-0.7, 52.6)], tmp_path)
    assert not (tmp_path / "venv").exists()


def test_matrix_of_no_points_is_empty(extract: Path, tmp_path: Path) -> None:
    assert vh.matrix(extract, [], [(-0.7, 52.6)], tmp_path).shape == (0, 1)
