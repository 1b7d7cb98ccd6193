from conftest import ce_loss

import pruner_iface as pi
from pruner_iface.report import Report


def test_report_round_trips_through_json_and_plots_evaluations(cnn, cnn_inputs, cnn_batches, tmp_path):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l2", scheduler={"name": "agp", "end": 2},
                       objective={"name": "flops", "target": 0.6})
    report = pruner.run(evaluate=lambda m: -float(ce_loss(m, cnn_batches[0])))
    report.to_json(tmp_path / "report.json")
    loaded = Report.load(tmp_path / "report.json")
    assert loaded == report
    assert loaded.steps[-1].evaluation is not None
    path = loaded.plot(tmp_path / "report.png")
    assert open(path, "rb").read(4) == b"\x89PNG"
