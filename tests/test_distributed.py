"""Two CPU processes (gloo) each see half of every batch; their data metrics agree across the
ranks, so the masks are identical on both and equal a single process's on the whole batches."""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import SmallCNN

import pruner_iface as pi

CASES = [  # (target, metric, training)
    ("channel", "taylor", []), ("channel", "hessian", []), ("element", "snip_momentum", []),
    ("channel", "apoz", []), ("element", "wanda", []), ("channel", "fluctuation", []),
    ({"name": "element", "module_types": ["Linear"]}, "l1", ["sparsegpt"]), ("channel", "l2", ["least_squares"]),
]


def union_batches():
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (4,), generator=g))
            for _ in range(3)]


def loss(model, batch):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x), y)


def masks_of(batches):
    out = []
    for target, metric, training in CASES:
        torch.manual_seed(0)
        model = SmallCNN().double().eval()
        pruner = pi.Pruner(model, (batches[0][0][:1],), target=target, metric=metric, training=training,
                           objective={"name": "sparsity", "target": 0.4})
        pruner.run(data=batches, loss_fn=loss)
        out.append({k: v.clone() for k, v in model.state_dict().items()})
    return out


def worker(rank, size, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=size)
    try:
        half = [(x[rank * 2:(rank + 1) * 2], y[rank * 2:(rank + 1) * 2]) for x, y in union_batches()]
        torch.save(masks_of(half), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_compute_the_masks_of_one_process_on_the_union_of_their_data(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = masks_of(union_batches())
    for case, one, a, b in zip(CASES, single, *ranks):
        for key in one:
            if key.endswith("_mask"):
                assert torch.equal(a[key], b[key]), (case, key)
                assert torch.equal(a[key], one[key]), (case, key)
            else:
                assert torch.allclose(a[key], one[key], atol=1e-9), (case, key)  # sparsegpt's and least_squares' updates too
