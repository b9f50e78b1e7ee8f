"""XLA on 2 logical CPU devices: the train, eval and inference steps trace once for a fixed crop and give
the uncompiled results; `--tpu` goes through one `TPUClusterResolver` helper (mocked: no TPU here)."""

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.evaluation import EvalConfig, evaluator
from hfgd_tf.evaluation.inference import predict_logits
from hfgd_tf.models import build_model
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer, distribute
from tests.conftest import random_images, tiny_model_config

# Two scales and a sliding window (4 windows at 32x32, 1 at 24x24): the static-shape branches of the
# inference function; the eval test adds flip. Small, as XLA compiles every forward pass of the protocol.
PROTOCOL = EvalConfig(eval_scales=(0.75, 1.0), sliding_window_height=24, sliding_window_width=24)


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    # Not the shared synthetic_records: 32x32 images (XLA compiles every forward pass) and 6 val images.
    return write_synthetic_tfrecords(str(tmp_path_factory.mktemp("synthetic")), 8, 6, 32, 32, examples_per_shard=8)


def _data_config(data_dir):
    return DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=8)


@pytest.mark.slow
def test_the_xla_train_step_traces_once_on_two_replicas(synthetic_dir, tmp_path, mirrored_strategy):
    trainer = Trainer(
        tiny_model_config(num_classes=8, norm_method="group_norm"),
        _data_config(synthetic_dir),
        OptimizerConfig(initial_lr=0.01),
        TrainConfig(checkpoint_dir=str(tmp_path), batch_size=2, jit_compile=True, evaluate_every_epoch=False),
        EvalConfig(eval_batch_size=2),
        strategy=mirrored_strategy,
    )
    iterator = trainer.distributed_iterator()
    step = trainer.make_train_step()
    for _ in range(3):
        outputs = step(iterator)
    assert np.isfinite(float(outputs["total"])) and float(outputs["update_applied"]) == 1.0
    assert step.experimental_get_tracing_count() == 1
    # The XLA-compiled forward/backward traces once per replica (each under its own device scope), never
    # again for later steps.
    assert trainer._gradient_fn.experimental_get_tracing_count() == mirrored_strategy.num_replicas_in_sync == 2


@pytest.mark.slow
def test_the_bfloat16_xla_train_step_compiles_and_trains(synthetic_dir, tmp_path):
    # XLA used to refuse this step: the gradient of a bfloat16 bilinear resize came out as float32
    # ("Seen floating point types of different precisions in ReluGrad", tensorflow/tensorflow#81273).
    # Every model resizes through the same helper; OS2 and the PPM add the OS2 stage's and the pooling
    # branches' resizes.
    trainer = Trainer(
        tiny_model_config(num_classes=8, output_stride=2, cae="ppm"),
        _data_config(synthetic_dir),
        OptimizerConfig(initial_lr=0.01),
        TrainConfig(
            checkpoint_dir=str(tmp_path),
            batch_size=2,
            jit_compile=True,
            mixed_precision="bfloat16",
            evaluate_every_epoch=False,
        ),
        EvalConfig(eval_batch_size=2),
    )
    assert trainer.model.dtype_policy.name == "mixed_bfloat16"
    iterator = trainer.distributed_iterator()
    step = trainer.make_train_step()
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    for _ in range(2):
        outputs = step(iterator)
    assert np.isfinite(float(outputs["total"])) and float(outputs["update_applied"]) == 1.0
    assert step.experimental_get_tracing_count() == 1
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, trainer.model.trainable_variables)]
    assert all(v.dtype == tf.float32 for v in trainer.model.trainable_variables) and sum(changed) > len(changed) // 2


@pytest.mark.slow
def test_the_xla_eval_step_traces_once_and_matches_the_uncompiled_one(synthetic_dir, mirrored_strategy, monkeypatch):
    with mirrored_strategy.scope():
        model = build_model(tiny_model_config(num_classes=8, norm_method="group_norm"))
    traces = []

    def counted_predict_logits(*args):
        traces.append(1)  # Python runs only while tracing
        return predict_logits(*args)

    monkeypatch.setattr(evaluator, "predict_logits", counted_predict_logits)
    data_config = _data_config(synthetic_dir)
    results = {}
    for jit_compile in (False, True):
        traces.clear()
        # 6 images, one per replica per step: 3 steps, the same static shape each time.
        dataset = evaluator.build_distributed_eval_dataset(mirrored_strategy, data_config, 2)
        results[jit_compile] = evaluator.evaluate(
            model,
            dataset,
            8,
            data_config.info.ignore_label,
            EvalConfig(flip=True),
            strategy=mirrored_strategy,
            jit_compile=jit_compile,
        )
        # Traced once per replica (2), not again for the later batches (3 steps).
        assert len(traces) == 2
    assert results[True]["num_images"] == results[False]["num_images"] == 6
    np.testing.assert_array_equal(results[True]["confusion_matrix"], results[False]["confusion_matrix"])


@pytest.mark.slow
def test_xla_inference_traces_once_and_matches_the_uncompiled_logits():
    model = build_model(tiny_model_config(num_classes=8, norm_method="group_norm"))
    compiled = tf.function(lambda images: predict_logits(model, images, PROTOCOL), jit_compile=True)
    for seed in range(3):
        images = tf.constant(random_images(batch=2, height=32, width=32, seed=seed))
        np.testing.assert_allclose(
            compiled(images).numpy(), predict_logits(model, images, PROTOCOL).numpy(), rtol=1e-4, atol=1e-4
        )
    assert compiled.experimental_get_tracing_count() == 1


class _FakeResolver:
    created = []

    def __init__(self, tpu):
        if tpu == "missing":
            raise ValueError("Could not find TPU missing")
        self.tpu = tpu
        _FakeResolver.created.append(self)


def test_tpu_strategy_resolves_connects_and_initialises_through_one_helper(monkeypatch):
    calls = []
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", _FakeResolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: calls.append(("connect", r.tpu)))
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: calls.append(("initialise", r.tpu)))
    monkeypatch.setattr(tf.distribute, "TPUStrategy", lambda r: ("TPUStrategy", r))
    # --strategy=auto with --tpu (scripts/train.py via TrainConfig, scripts/evaluate.py) and --strategy=tpu.
    for name in ("auto", "tpu"):
        calls.clear()
        kind, resolver = distribute.create_strategy(name, "my-tpu")
        assert kind == "TPUStrategy" and resolver.tpu == "my-tpu"
        assert calls == [("connect", "my-tpu"), ("initialise", "my-tpu")]
    with pytest.raises(ValueError, match=r"--tpu='missing': cannot find or initialise the TPU \(Could not find"):
        distribute.create_strategy("tpu", "missing")
    assert TrainConfig(checkpoint_dir="x", strategy="tpu", tpu="my-tpu", mixed_precision="bfloat16").dtype_policy == (
        "mixed_bfloat16"
    )
