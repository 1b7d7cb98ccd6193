"""`rewind`: lottery-ticket rounds (Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019;
NNI's LotteryTicketPruner): the model's parameters and buffers as they are when training starts
are restored after every pruning step, with the masks kept — each round retrains the surviving
subnetwork from its initial values. With the `decay` scheduler's `exp` curve from 0 over N
rounds, round i prunes to 1 − (1 − S)^(i/N), NNI's lottery-ticket schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..masks import mask_name, masked_params, reapply_masks
from .base import Mechanism, register_mechanism


@register_mechanism("rewind")
@dataclass
class Rewind(Mechanism):
    state_keys = ("_saved", "_rewinds")

    def on_train_begin(self) -> None:
        model = self.context.model
        masks = {f"{mod}.{mask_name(p)}" if mod else mask_name(p) for mod, _, p, _ in masked_params(model)}
        self._saved = {name: t.detach().clone() for name, t in
                       [*model.named_parameters(), *model.named_buffers()] if name not in masks}
        self._rewinds = 0

    def after_prune(self, step: int) -> None:
        model = self.context.model
        current = dict([*model.named_parameters(), *model.named_buffers()])
        with torch.no_grad():
            for name, saved in self._saved.items():
                current[name].copy_(saved)
        reapply_masks(model)
        self._rewinds += 1

    def notes(self) -> dict:
        return {"rewinds": getattr(self, "_rewinds", 0)}
