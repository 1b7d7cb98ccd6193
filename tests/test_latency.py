import pytest
import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.latency import Latency


def test_measure_latency_reports_median_and_spread():
    lat = pi.measure_latency(nn.Linear(8, 8), (torch.randn(4, 8),), runs=5, warmup=1, threads=1)
    assert lat.runs == 5 and lat.p10_ms <= lat.median_ms <= lat.p90_ms and lat.threads == 1


def _lat(rounds):
    return Latency(median_ms=0.0, p10_ms=0.0, p90_ms=0.0, runs=len(rounds), threads=1, round_medians_ms=tuple(rounds))


def test_ratio_to_is_the_median_of_the_per_round_ratios_so_drift_between_rounds_cancels():
    # the machine slows down 3x in the middle round: both models are hit alike there
    model = _lat([5.0, 15.0, 6.0])
    dense = _lat([10.0, 30.0, 10.0])
    assert model.ratio_to(dense) == pytest.approx(0.5)


def test_ratio_to_refuses_results_of_different_calls():
    with pytest.raises(ValueError, match="same compare_latency call"):
        _lat([1.0, 2.0]).ratio_to(_lat([1.0]))
    with pytest.raises(ValueError, match="same compare_latency call"):
        _lat([]).ratio_to(_lat([]))


def test_compare_latency_keeps_one_median_per_round():
    x = (torch.randn(4, 8),)
    result = pi.compare_latency({"a": nn.Linear(8, 8), "b": nn.Linear(8, 8)}, x, rounds=3, runs=2, warmup=0,
                                threads=1)
    assert len(result["a"].round_medians_ms) == 3 and all(t > 0 for t in result["a"].round_medians_ms)
    assert result["a"].runs == 6
    assert result["b"].ratio_to(result["a"]) > 0
