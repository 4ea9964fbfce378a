"""The CLI writes results only inside --out, whatever a job's result name says."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagen_cli.files import OutsideOut, confined


def test_a_result_name_lands_inside_out(tmp_path: Path) -> None:
    assert confined(tmp_path / "out", "api/ab/cat.png") == (tmp_path / "out" / "api/ab/cat.png").resolve()


@pytest.mark.parametrize("name", ["../escaped.png", "a/../../escaped.png", "/etc/passwd", "", "."])
def test_names_that_leave_out_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(OutsideOut, match="not inside"):
        confined(tmp_path / "out", name)


def test_a_link_under_out_that_points_elsewhere_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutsideOut):
        confined(tmp_path / "out", "link/cat.png")
