import warnings

import numpy as np
import pytest
import torch

onnxruntime = pytest.importorskip("onnxruntime")

from ecgtune.export import WeightedSoftmaxAverage  # noqa: E402
from ecgtune.models import create_model, list_models  # noqa: E402


@pytest.mark.parametrize("length", [205, 97])
def test_onnx_graph_of_all_families_matches_pytorch(tmp_path, length):
    torch.manual_seed(0)
    members = []
    for family in list_models():
        model = create_model(family, signal_length=length)
        model.train()
        for _ in range(3):  # move batch-norm statistics away from their initial values
            model(torch.rand(32, length) * 2)
        members.append(model.eval())
    ensemble = WeightedSoftmaxAverage(members, torch.full((len(members),), 1 / len(members))).eval()
    probe = torch.rand(5, length)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ensemble, (probe,), str(tmp_path / "e.onnx"), input_names=["signals"],
                          output_names=["probabilities"], opset_version=17, dynamo=False,
                          dynamic_axes={"signals": {0: "batch"}, "probabilities": {0: "batch"}})
    session = onnxruntime.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    signals = torch.rand(37, length)
    with torch.no_grad():
        expected = ensemble(signals).numpy()
    np.testing.assert_allclose(session.run(None, {"signals": signals.numpy()})[0], expected, atol=1e-4)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)
