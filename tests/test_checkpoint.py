"""Resume: a run saved at a step and resumed into a fresh model ends exactly like an
uninterrupted run; broken, foreign or mismatched run directories are refused untouched."""
import pytest
import torch
from conftest import SmallCNN, ce_loss, same_state, state

import pruner_iface as pi
from pruner_iface.errors import InputError


class Interrupted(Exception):
    pass


def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(3)]


def fresh():
    torch.manual_seed(0)
    return SmallCNN().eval()


INPUTS = (torch.randn(2, 3, 8, 8),)


def make_pruner(model, metric, training=()):
    return pi.Pruner(model, INPUTS, target="channel", metric=metric, allocator="global",
                     scheduler={"name": "agp", "start": 0, "end": 3, "frequency": 1},
                     objective={"name": "flops", "target": 0.5}, training=list(training))


def fine_tune_until(stop=None):
    def fine_tune(model, step):
        if step == stop:
            raise Interrupted
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        for batch in batches():
            optimizer.zero_grad()
            ce_loss(model, batch).backward()
            optimizer.step()
    return fine_tune


def evaluate(model):
    return -float(ce_loss(model, batches()[0]))


@pytest.mark.parametrize("metric, training", [("snip_momentum", []), ({"name": "random", "seed": 3}, []),
                                              ("l2", ["least_squares"])])
def test_run_resumed_from_its_run_directory_equals_an_uninterrupted_run(metric, training, tmp_path):
    whole = fresh()
    expected = make_pruner(whole, metric, training).run(data=batches(), loss_fn=ce_loss, fine_tune=fine_tune_until(),
                                              evaluate=evaluate)
    broken = fresh()
    with pytest.raises(Interrupted):
        make_pruner(broken, metric, training).run(data=batches(), loss_fn=ce_loss, fine_tune=fine_tune_until(2),
                                        evaluate=evaluate, run_dir=tmp_path)
    resumed_model = fresh()
    pruner = make_pruner(resumed_model, metric, training)
    pruner.load_state(tmp_path)
    assert [s.step for s in pruner.report.steps] == [s.step for s in expected.steps if s.step <= 1]
    report = pruner.run(data=batches(), loss_fn=ce_loss, fine_tune=fine_tune_until(), evaluate=evaluate,
                        run_dir=tmp_path)
    assert [s.step for s in report.steps] == [s.step for s in expected.steps]
    assert [s.evaluation for s in report.steps] == [s.evaluation for s in expected.steps]
    assert report.extra == expected.extra  # a mechanism's counts carry over
    for (name, a), (_, b) in zip(sorted(whole.state_dict().items()), sorted(resumed_model.state_dict().items())):
        assert torch.equal(a, b), name


def test_accumulators_keyed_by_member_tensors_are_restored_onto_the_new_members(tmp_path):
    broken = make_pruner(fresh(), "snip_momentum")
    with pytest.raises(Interrupted):
        broken.run(data=batches(), loss_fn=ce_loss, fine_tune=fine_tune_until(2), evaluate=evaluate)
    broken.save_state(tmp_path)
    saved = [broken.metric._sums[id(m)] for m in broken._members()]
    resumed = make_pruner(fresh(), "snip_momentum")
    resumed.load_state(tmp_path)
    members = resumed._members()
    assert set(resumed.metric._sums) == {id(m) for m in members}
    for member, before in zip(members, saved):
        assert torch.equal(resumed.metric._sums[id(member)], before), member.name


def test_training_loop_resumed_with_staged_masks_equals_an_uninterrupted_loop(tmp_path):
    def loop(model, pruner, steps, save_at=None):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        data = batches()
        for step in steps:
            if step == save_at:
                pruner.save_state(tmp_path)
                return
            pruner.on_step_begin(step)
            optimizer.zero_grad()
            ce_loss(model, data[step % 3]).backward()
            pruner.on_before_optimizer_step()
            optimizer.step()
            pruner.on_after_optimizer_step()

    def build(model):
        return pi.Pruner(model, INPUTS, target={"name": "block", "block": [4, 1]}, metric="snip_momentum",
                         scheduler={"name": "linear", "start": 0, "end": 8, "frequency": 4},
                         objective={"name": "sparsity", "target": 0.5}, include=["fc1"], training=["progressive"])

    whole = fresh()
    pruner = build(whole)
    pruner.on_train_begin()
    loop(whole, pruner, range(12))
    pruner.on_train_end()
    first = fresh()
    pruner = build(first)
    pruner.on_train_begin()
    loop(first, pruner, range(12), save_at=6)  # mid-way through a step's staged masks
    assert pruner.training[0]._pending
    second = fresh()
    pruner = build(second)
    pruner.load_state(tmp_path)
    pruner.on_train_begin()
    loop(second, pruner, range(6, 12))
    pruner.on_train_end()
    for (name, a), (_, b) in zip(sorted(whole.state_dict().items()), sorted(second.state_dict().items())):
        assert torch.equal(a, b), name


@pytest.fixture
def saved_run(tmp_path):
    model = fresh()
    pruner = make_pruner(model, "l2")
    pruner.run(run_dir=tmp_path)
    return tmp_path


@pytest.mark.parametrize("damage, match", [
    (lambda d: (d / "pruner_state.pt").write_bytes(b"not a checkpoint"), "cannot be read"),
    (lambda d: torch.save({"format": "pruner_iface.run/0"}, d / "pruner_state.pt"), "written by another version"),
    (lambda d: torch.save({"format": "pruner_iface.run/1", "step": 1}, d / "pruner_state.pt"), "is damaged: it lacks"),
    (lambda d: (d / "pruner_state.pt").unlink(), "holds no saved pruner state"),
])
def test_broken_or_foreign_state_is_refused_and_the_model_untouched(saved_run, damage, match):
    damage(saved_run)
    model = fresh()
    pruner = make_pruner(model, "l2")
    before = state(model)
    with pytest.raises(InputError, match=match):
        pruner.load_state(saved_run)
    assert same_state(model, before)


def test_state_of_other_parts_or_another_model_is_refused(saved_run):
    model = fresh()
    before = state(model)
    with pytest.raises(InputError, match="saved by a pruner with other parts"):
        make_pruner(model, "l1").load_state(saved_run)
    assert same_state(model, before)
    other = fresh()
    other.fc2 = torch.nn.Linear(32, 7)
    with pytest.raises(InputError, match=r"saved from another model \(tensors differ: \['fc2.weight', 'fc2.bias'\]"):
        make_pruner(other, "l2").load_state(saved_run)
