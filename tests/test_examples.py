"""The examples run end to end (they are the documentation users copy from)."""
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
ARGS = {"latency_target": ["--quick"]}  # the full experiment is for people; the suite checks it runs


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(path)] + ARGS.get(path.stem, []))
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "params" in out
