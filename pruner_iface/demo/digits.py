"""scikit-learn's bundled digits (1,797 real 8x8 images): fixed 80/20 split, standardised."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError


@dataclass
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Digits:
    """Images as float tensors [N, 1, 8, 8] standardised with the training split's statistics."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise InputError("the demo needs scikit-learn: pip install 'pruner-iface[examples]'") from None
    data = sk_load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.tensor(np.random.RandomState(seed).permutation(len(y)))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return Digits(x[train], y[train], x[test], y[test])
