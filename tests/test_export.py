import pytest
import torch
from conftest import KwargModel, same_state, state

import pruner_iface as pi
from pruner_iface.export import export_onnx, export_program
from pruner_iface.masks import masked_params


def channel_pruned(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l2", objective={"name": "flops", "target": 0.6})
    pruner.run()
    return pruner.speed_up()


def element_masked(cnn, cnn_inputs):
    pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", objective={"name": "sparsity", "target": 0.7}).run()
    return cnn


@pytest.mark.parametrize("prune", [channel_pruned, element_masked])
def test_exported_program_runs_and_matches_the_pruned_model(prune, cnn, cnn_inputs):
    model = prune(cnn, cnn_inputs)
    before = state(model)
    program = export_program(model, cnn_inputs)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(program.module()(x), model(x), atol=1e-5)
    assert not any(name.endswith("_mask") for name in program.state_dict)  # baked, not carried
    assert same_state(model, before) and (prune is channel_pruned or any(masked_params(model)))


def test_export_takes_keyword_inputs():
    model = KwargModel().eval()
    pi.Pruner(model, {"features": torch.randn(2, 12)}, target="channel", metric="l1",
              objective={"name": "params", "target": 0.7}).run()
    inputs = {"features": torch.randn(3, 12)}
    program = export_program(model, inputs)
    assert torch.allclose(program.module()(**inputs), model(**inputs), atol=1e-5)


def test_onnx_export_runs_in_onnxruntime_and_matches(cnn, cnn_inputs, tmp_path):
    ort = pytest.importorskip("onnxruntime")  # installed by the test extra; absent only in minimal installs
    model = channel_pruned(cnn, cnn_inputs)
    path = export_onnx(model, cnn_inputs, tmp_path / "pruned.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = cnn_inputs[0]
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), model(x), atol=1e-4)
