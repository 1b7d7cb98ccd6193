import pytest
import torch
from torch import nn

from pruner_iface.feature_stats import unfolded
from pruner_iface.targets.base import matrix_view


@pytest.mark.parametrize("conv, shape", [
    (nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), bias=False), (2, 3, 9, 8)),
    (nn.Conv2d(4, 6, 3, padding=(0, 1), groups=2, bias=False), (2, 4, 7, 6)),
    (nn.Conv1d(6, 3, 3, stride=2, padding=2, dilation=2, groups=3, bias=False), (3, 6, 11)),
    (nn.Conv1d(2, 4, 3, padding="valid", bias=False), (2, 2, 5)),
    (nn.Linear(7, 3, bias=False), (2, 4, 7)),
])
def test_unfolded_columns_times_each_groups_weight_matrix_give_the_output(conv, shape):
    torch.manual_seed(3)
    x = torch.randn(*shape)
    out = conv(x).detach()
    groups = getattr(conv, "groups", 1)
    columns = unfolded(conv, x)  # [groups, samples, columns]
    per_group = [c @ matrix_view(w.detach()).T for c, w in zip(columns, conv.weight.chunk(groups, 0))]
    channels_last = out if isinstance(conv, nn.Linear) else out.movedim(1, -1)
    expected = channels_last.reshape(-1, channels_last.shape[-1])
    assert torch.allclose(torch.cat(per_group, 1), expected, atol=1e-5)
