"""`imagen console` without the [console] extra says how to install it, with exit status 2."""

from __future__ import annotations

import sys

import pytest

from imagen_cli import app


def test_console_without_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed: importing it fails
    monkeypatch.delitem(sys.modules, "imagen_cli.console.serve", raising=False)
    assert app.main(["--local", "console"]) == 2
    err = capsys.readouterr().err
    assert "pip install './cli[console]'" in err and "imagen-cli[console]" in err


def test_console_is_a_subcommand() -> None:
    args = app.parser().parse_args(["console", "--port", "9000", "--no-browser"])
    assert (args.command, args.port, args.no_browser) == ("console", 9000, True)
