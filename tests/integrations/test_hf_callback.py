import pytest
import torch
import transformers as tf

import pruner_iface as pi
from pruner_iface.integrations.hf import PruningCallback


def tiny_bert():
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=16, num_labels=2)
    return tf.BertForSequenceClassification(config)


def dataset(n=24, length=8):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 64, (n, length), generator=g)
    return [{"input_ids": i, "attention_mask": torch.ones(length, dtype=torch.long), "labels": int(i[0] % 2)}
            for i in ids]


def trainer(model, callback, tmp_path, steps, accumulation=1):
    args = tf.TrainingArguments(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=4,
                                gradient_accumulation_steps=accumulation, learning_rate=1e-3, use_cpu=True,
                                report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True)
    return tf.Trainer(model=model, args=args, train_dataset=dataset(), callbacks=[callback])


@pytest.mark.parametrize("accumulation", [1, 2])
def test_trainer_callback_prunes_on_the_schedule_with_gradient_scores(tmp_path, accumulation):
    model = tiny_bert()
    ids = torch.ones(1, 8, dtype=torch.long)
    pruner = pi.Pruner(model, {"input_ids": ids}, target="element", metric="snip_momentum",
                       scheduler={"name": "linear", "start": 1, "end": 5, "frequency": 2},
                       objective={"name": "sparsity", "target": 0.6}, include=[r".*encoder.*dense"])
    callback = PruningCallback(pruner)
    trainer(model, callback, tmp_path, steps=6, accumulation=accumulation).train()
    assert pruner.plan == [(1, 0.0), (3, 0.3), (5, 0.6)]  # step 1 starts from dense: nothing to prune
    assert [(s.step, s.objective_target) for s in callback.report.steps] == [(3, 0.3), (5, 0.6)]
    assert callback.report.steps[-1].objective_value >= 0.6
    layer = model.bert.encoder.layer[0].intermediate.dense
    assert float((layer.weight == 0).float().mean()) >= 0.6 - 1e-6  # masks held through the optimizer steps


def test_trainer_callback_runs_training_mechanisms_and_their_hook_checks(tmp_path):
    model = tiny_bert()
    pruner = pi.Pruner(model, {"input_ids": torch.ones(1, 8, dtype=torch.long)}, target="head", metric="l2",
                       scheduler={"name": "one-pass", "start": 2}, objective={"name": "sparsity", "target": 0.5},
                       training=[{"name": "group_lasso", "alpha": 1e-3}])
    callback = PruningCallback(pruner)
    trainer(model, callback, tmp_path, steps=4).train()
    assert callback.report.steps and callback.report.steps[0].step == 2
    assert all(layer.attention.self.num_attention_heads == 4 for layer in model.bert.encoder.layer)  # masked only
    assert pruner.speed_up().bert.encoder.layer[0].attention.self.num_attention_heads == 2


def test_callback_refuses_something_that_is_not_a_pruner():
    with pytest.raises(TypeError, match="needs a pruner_iface.Pruner"):
        PruningCallback(object())
