import json

import pytest
from torch import nn

from pruner_iface import cli


def tiny_model():
    import torch

    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)), (torch.randn(2, 8),)


def test_parts_lists_every_registry(capsys):
    assert cli.main(["parts"]) == 0
    out = capsys.readouterr().out
    assert "targets" in out and "n:m" in out and "snip_momentum" in out and "agp" in out


def test_presets_lists_names_with_descriptions(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "magnitude-global" in out and "Han et al." in out


def test_prune_with_preset_writes_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["prune", "--preset", "channel-flops", "--model", "test_cli:tiny_model",
                   "--objective", "flops=0.6", "--speed-up", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["flops"] <= 0.6 * report["dense_flops"] + 1
    assert (out / "config.yaml").exists() and (out / "model.pt").exists() and (out / "report.md").exists()
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "FLOPs" in capsys.readouterr().out


def test_report_renders_a_saved_run_again(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["prune", "--preset", "magnitude-global", "--model", "test_cli:tiny_model", "--out", str(run)]) == 0
    capsys.readouterr()
    again = tmp_path / "again"
    assert cli.main(["report", str(run), "--out", str(again)]) == 0
    assert (again / "report.md").read_text() == (run / "report.md").read_text()
    assert (again / "report.png").stat().st_size > 1000
    assert "# Pruning report" in capsys.readouterr().out


@pytest.mark.parametrize("content, match", [
    (None, "is not a run directory: it has no report.json"),
    ("{not json", "cannot read the report"),
    ('{"format": "pruner_iface.report/0", "steps": []}', "written by another version"),
    ('{"format": "pruner_iface.report/1", "steps": [{"step": 1}]}', "is a damaged report"),
])
def test_report_refuses_a_broken_or_foreign_run_directory(tmp_path, capsys, content, match):
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    assert cli.main(["report", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()


def test_prune_with_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("target: element\nmetric: l1\nallocator: global\nobjective: {name: sparsity, target: 0.5}\n")
    assert cli.main(["prune", "--config", str(cfg), "--model", "test_cli:tiny_model", "--out", str(tmp_path / "r")]) == 0


def test_cli_errors_are_clear_and_exit_2(tmp_path, capsys):
    assert cli.main(["prune", "--preset", "nope", "--model", "test_cli:tiny_model", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert cli.main(["prune", "--preset", "demo", "--model", "no_such_module:f", "--out", str(tmp_path)]) == 2
    assert "cannot import" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["prune", "--model", "x:y"])  # neither --config nor --preset
