"""Short training runs: learning happens, resume continues exactly, NaN stops without a bad checkpoint."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.data.pipeline import build_train_dataset
from hfgd_tf.evaluation import EvalConfig
from hfgd_tf.train import NonFiniteLossError, OptimizerConfig, TrainConfig, Trainer
from hfgd_tf.train.checkpoints import read_run_config, resolve_checkpoint, restore_model
from hfgd_tf.train.losses import SegmentationLoss
from tests.conftest import tiny_model_config


def _trainer(
    data_dir,
    checkpoint_dir,
    steps,
    epoch_steps=None,
    lr=0.01,
    optimizer_config=None,
    model_overrides=None,
    **train_overrides,
):
    train = dict(
        checkpoint_dir=checkpoint_dir,
        batch_size=2,
        train_epoch=1,
        epoch_steps=steps,
        strategy="one_device",
        log_every_steps=1000,
        evaluate_every_epoch=False,
    )
    if epoch_steps:
        train.update(epoch_steps=epoch_steps, train_epoch=steps // epoch_steps)
    train.update(train_overrides)
    return Trainer(
        tiny_model_config(num_classes=8, **(model_overrides or {})),
        DataConfig("synthetic_streets", data_dir, crop_height=48, crop_width=48, shuffle_buffer=8),
        optimizer_config or OptimizerConfig(initial_lr=lr),
        TrainConfig(**train),
        EvalConfig(eval_batch_size=2),
    )


def _weights(model):
    return [v.numpy() for v in model.weights]


def _logged_scalars(log_dir, tag):
    """{step: value} of a scalar the trainer wrote to TensorBoard."""
    values = {}
    for path in tf.io.gfile.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.slow
def test_loss_decreases_and_run_directory_is_complete(synthetic_records, tmp_path):
    trainer = _trainer(synthetic_records, str(tmp_path), steps=30, evaluate_every_epoch=True, lr=0.1, log_every_steps=1)
    # The loss on one fixed training batch (batch-statistics BN, as in training) before and after:
    # measured 4.17 -> 3.43.
    images, labels = next(iter(build_train_dataset(trainer.data_config, 4)))
    loss = SegmentationLoss("cross_entropy", 255)

    def fixed_batch_loss():
        return float(sum(loss(labels, trainer.model(images, training=True)).values()))

    before = fixed_batch_loss()
    metrics = trainer.train()
    # The training loss logged at every step falls too (batches differ, so compare 10-step means).
    losses = _logged_scalars(os.path.join(tmp_path, "logs", "train"), "loss/total")
    assert sorted(losses) == list(range(1, 31))
    first, last = np.mean([losses[s] for s in range(1, 11)]), np.mean([losses[s] for s in range(21, 31)])
    assert last < 0.95 * first, (first, last)
    assert metrics is not None and 0.0 <= metrics["miou"] <= 1.0
    assert os.path.isfile(os.path.join(tmp_path, "run_config.json"))
    assert os.path.isfile(os.path.join(tmp_path, "best", "model.weights.h5"))
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-30")
    model_config, data_config, _ = read_run_config(str(tmp_path))
    assert model_config.num_classes == 8 and data_config.data_dir == synthetic_records
    model, _, _ = restore_model(str(tmp_path), "latest")
    for restored, trained in zip(_weights(model), _weights(trainer.model)):
        np.testing.assert_array_equal(restored, trained)
    after = fixed_batch_loss()  # last: a training-mode call moves the BN statistics
    assert after < 0.85 * before, (before, after)


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(synthetic_records, tmp_path):
    straight = _trainer(synthetic_records, str(tmp_path / "straight"), steps=6, epoch_steps=3)
    straight.train()
    interrupted = _trainer(synthetic_records, str(tmp_path / "resumed"), steps=6, epoch_steps=3)
    interrupted.train_config = interrupted.train_config.__class__(
        **{**interrupted.train_config.__dict__, "train_epoch": 1}
    )
    interrupted.train()  # stops after the first epoch (3 steps), as if killed after its checkpoint
    resumed = _trainer(synthetic_records, str(tmp_path / "resumed"), steps=6, epoch_steps=3)
    assert resumed.restore() == 3
    resumed.train()
    for a, b in zip(_weights(straight.model), _weights(resumed.model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(resumed.optimizer.iterations) == int(straight.optimizer.iterations) == 6


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_records, tmp_path):
    trainer = _trainer(synthetic_records, str(tmp_path), steps=4, epoch_steps=2)
    trainer.train_config = trainer.train_config.__class__(**{**trainer.train_config.__dict__, "train_epoch": 1})
    trainer.train()
    good = tf.train.latest_checkpoint(str(tmp_path))
    poisoned = _trainer(synthetic_records, str(tmp_path), steps=4, epoch_steps=2)
    poisoned.restore()
    poisoned.model.class_kernels.kernel.assign(tf.fill(poisoned.model.class_kernels.kernel.shape, np.nan))
    poisoned.train_config = poisoned.train_config.__class__(
        **{**poisoned.train_config.__dict__, "restore_checkpoint": False}
    )
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        poisoned.train()
    assert tf.train.latest_checkpoint(str(tmp_path)) == good


def test_class_count_mismatch_is_rejected(synthetic_records, tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        Trainer(
            tiny_model_config(num_classes=3),
            DataConfig("synthetic_streets", synthetic_records),
            OptimizerConfig(),
            TrainConfig(checkpoint_dir=str(tmp_path), strategy="one_device"),
            EvalConfig(),
        )


@pytest.mark.slow
def test_float16_training_uses_loss_scaling_and_stays_finite(synthetic_records, tmp_path):
    import keras

    trainer = _trainer(synthetic_records, str(tmp_path), steps=2, mixed_precision="float16")
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.model.get_layer("context_encoder").compute_dtype == "float16"
    trainer.train()
    assert all(np.isfinite(v.numpy()).all() for v in trainer.model.weights)
    assert int(trainer.optimizer.iterations) == 2


@pytest.mark.slow
def test_adamw_with_warmup_and_clipping_trains(synthetic_records, tmp_path):
    import keras

    config = OptimizerConfig(
        optimizer="adamw", initial_lr=1e-3, warmup_steps=1, gradient_clip_norm=1.0, weight_decay=0.01
    )
    trainer = _trainer(synthetic_records, str(tmp_path), steps=2, optimizer_config=config)
    assert isinstance(trainer.optimizer, keras.optimizers.AdamW)
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    trainer.train()
    changed = sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, trainer.model.trainable_variables))
    assert changed > len(before) // 2


@pytest.mark.slow
def test_class_weighting_reads_the_manifest(synthetic_records, tmp_path):
    trainer = _trainer(synthetic_records, str(tmp_path), steps=1, class_weighting="median")
    weights = trainer.class_weights.numpy()
    assert weights.shape == (8,) and (weights > 0).all()
    trainer.train()
    with pytest.raises(ValueError, match="manifest.json"):
        _trainer(str(tmp_path), str(tmp_path / "other"), steps=1, class_weighting="median")


@pytest.mark.slow
def test_xla_compiled_train_step_matches_the_uncompiled_one(synthetic_records, tmp_path):
    plain = _trainer(synthetic_records, str(tmp_path / "plain"), steps=2, op_determinism=False)
    plain.train()
    compiled = _trainer(synthetic_records, str(tmp_path / "xla"), steps=2, jit_compile=True)
    compiled.train()
    for a, b in zip(plain.model.weights, compiled.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4, err_msg=a.path)


def test_fine_tuning_from_a_run_with_another_class_count(synthetic_records, tmp_path):
    from hfgd_tf.backbones import save_weights_by_name
    from hfgd_tf.models import build_model

    source = build_model(tiny_model_config(num_classes=5))
    path = str(tmp_path / "source.weights.h5")
    save_weights_by_name(source, path)
    trainer = _trainer(synthetic_records, str(tmp_path / "run"), steps=1, init_weights_path=path)
    kernel = trainer.model.class_kernels.kernel
    assert kernel.shape[-1] == 8  # re-initialised for the new classes
    np.testing.assert_array_equal(trainer.model.backbone.weights[0].numpy(), source.backbone.weights[0].numpy())


def test_a_missing_or_cut_short_init_weights_file_names_the_flag(synthetic_records, tmp_path):
    from hfgd_tf.backbones import save_weights_by_name
    from hfgd_tf.models import build_model

    missing = str(tmp_path / "nowhere.weights.h5")
    with pytest.raises(ValueError, match=r"^--init_weights_path \(TrainConfig.init_weights_path\) not found: "):
        _trainer(synthetic_records, str(tmp_path / "a"), steps=1, init_weights_path=missing)
    path = str(tmp_path / "source.weights.h5")
    save_weights_by_name(build_model(tiny_model_config(num_classes=5)), path)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(
        ValueError,
        match=r"^--init_weights_path \(TrainConfig.init_weights_path\): '.*source\.weights"
        r"\.h5' cannot be read \(\d+ bytes; .* Copy the file again",
    ):
        _trainer(synthetic_records, str(tmp_path / "b"), steps=1, init_weights_path=path)


@pytest.mark.slow
def test_a_non_finite_gradient_with_a_finite_loss_is_not_applied_nor_saved(synthetic_records, tmp_path):
    first = _trainer(synthetic_records, str(tmp_path), steps=2, epoch_steps=1)
    first.train_config = first.train_config.__class__(**{**first.train_config.__dict__, "train_epoch": 1})
    first.train()
    good = tf.train.latest_checkpoint(str(tmp_path))
    assert good.endswith("ckpt-1")
    poisoned = _trainer(synthetic_records, str(tmp_path), steps=2, epoch_steps=1)
    compute = poisoned._gradient_fn

    def nan_gradients(images, labels, count):
        losses, gradients = compute(images, labels, count)
        return losses, [g * np.nan for g in gradients]

    poisoned._gradient_fn = nan_gradients
    assert poisoned.restore() == 1
    before = [v.numpy() for v in poisoned.model.trainable_variables]
    with pytest.raises(NonFiniteLossError, match="gradient is NaN/Inf at step 2.*ckpt-1"):
        poisoned.train()
    assert tf.train.latest_checkpoint(str(tmp_path)) == good
    # The update was not applied (only BatchNorm's moving statistics saw the forward pass).
    for old, variable in zip(before, poisoned.model.trainable_variables):
        np.testing.assert_array_equal(old, variable.numpy(), err_msg=variable.path)


@pytest.mark.slow
def test_the_loop_reads_the_device_only_at_log_steps_and_a_nan_gradient_freezes_the_weights(
    synthetic_records, tmp_path
):
    # Log and checkpoint at step 4 only; the gradient is NaN at step 2 only. The host notices at step 4,
    # but steps 2-4 (3 and 4 with finite gradients) must not have moved a trainable weight, and no
    # checkpoint may be written.
    trainer = _trainer(synthetic_records, str(tmp_path), steps=4, log_every_steps=4)
    compute = trainer._gradient_fn

    def nan_at_step_2(images, labels, count):
        losses, gradients = compute(images, labels, count)
        factor = tf.where(trainer._steps_run == 1, np.nan, 1.0)  # _steps_run counts the steps done
        return losses, [g * factor for g in gradients]

    trainer._gradient_fn = nan_at_step_2
    health_checks, after_step_1 = [], []
    check, make = trainer.check_health, trainer.make_train_step

    def counted_check():
        health_checks.append(int(trainer._steps_run.numpy()))
        check()

    def make_train_step():
        step = make()

        def first_step_snapshot(iterator):
            outputs = step(iterator)
            if not after_step_1:
                after_step_1.extend(v.numpy() for v in trainer.model.trainable_variables)
            return outputs

        return first_step_snapshot

    trainer.check_health, trainer.make_train_step = counted_check, make_train_step
    with pytest.raises(NonFiniteLossError, match=r"gradient is NaN/Inf at step 2 \(loss .*noticed by step 4\).*None"):
        trainer.train()
    assert health_checks == [4]
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    for old, variable in zip(after_step_1, trainer.model.trainable_variables):
        np.testing.assert_array_equal(old, variable.numpy(), err_msg=variable.path)


def test_a_checkpoint_is_never_written_with_non_finite_weights(synthetic_records, tmp_path):
    trainer = _trainer(synthetic_records, str(tmp_path), steps=1)
    trainer.save_checkpoint(1)
    kernel = trainer.model.class_kernels.kernel
    kernel.assign(tf.fill(kernel.shape, np.inf))
    with pytest.raises(NonFiniteLossError, match="NaN/Inf at step 2.*class_kernels"):
        trainer.save_checkpoint(2)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-1")


def test_the_finite_weights_check_passes_models_with_integer_state(synthetic_records, tmp_path):
    # Swin/ConvNeXt hold int64 drop path call counters among their weights; the check before a save
    # must skip them (tf.math.is_finite has no integer kernel), not crash every such run at its first save.
    trainer = Trainer(
        tiny_model_config(num_classes=8, backbone="swin_tiny_test", drop_path_rate=0.1),
        DataConfig("synthetic_streets", synthetic_records, crop_height=48, crop_width=48, shuffle_buffer=8),
        OptimizerConfig(),
        TrainConfig(checkpoint_dir=str(tmp_path), batch_size=2, train_epoch=1, epoch_steps=1, strategy="one_device"),
        EvalConfig(eval_batch_size=2),
    )
    assert [v for v in trainer.model.weights if not v.dtype.startswith(("float", "bfloat"))]
    trainer.save_checkpoint(1)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-1")


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_backbone_lr_multiplier_scales_the_backbone_update_only(synthetic_records, tmp_path, optimizer):
    deltas = {}
    for multiplier in (1.0, 0.1):
        keras.utils.set_random_seed(0)
        config = OptimizerConfig(
            optimizer=optimizer, initial_lr=0.01, warmup_steps=2, backbone_lr_multiplier=multiplier
        )
        trainer = _trainer(
            synthetic_records, str(tmp_path / f"{optimizer}{multiplier}"), steps=1, optimizer_config=config
        )
        backbone_ids = {id(v) for v in trainer.model.backbone.trainable_variables}
        before = [v.numpy() for v in trainer.model.trainable_variables]
        trainer.train()
        deltas[multiplier] = [
            (id(v) in backbone_ids, v.path, v.numpy() - b) for v, b in zip(trainer.model.trainable_variables, before)
        ]
        if multiplier != 1.0:
            # Same schedule (warmup included), scaled.
            head_lr = float(trainer._inner_optimizer.learning_rate)
            assert float(trainer.backbone_optimizer.learning_rate) == pytest.approx(multiplier * head_lr)
            assert int(trainer.backbone_optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy()) == 1
    num_backbone = 0
    for (is_backbone, path, full), (_, _, scaled) in zip(deltas[1.0], deltas[0.1]):
        # First step: SGD moves by -lr * g, Adam by about -lr * sign(g) (+ decoupled decay, also * lr).
        expected = 0.1 * full if is_backbone else full
        np.testing.assert_allclose(scaled, expected, rtol=1e-3, atol=1e-7, err_msg=path)
        num_backbone += is_backbone
    assert num_backbone > 0 and np.abs(deltas[1.0][0][2]).max() > 0


@pytest.mark.slow
def test_freeze_backbone_bn_keeps_backbone_statistics_and_affine_parameters(synthetic_records, tmp_path):
    trainer = _trainer(synthetic_records, str(tmp_path), steps=2, freeze_backbone_bn=True)
    backbone_bn = [
        layer
        for layer in trainer.model.backbone._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    head_bn = [
        layer
        for layer in trainer.model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization) and all(layer is not b for b in backbone_bn)
    ]
    assert backbone_bn and head_bn
    trainable_ids = {id(v) for v in trainer.model.trainable_variables}
    assert not any(id(v) in trainable_ids for layer in backbone_bn for v in layer.weights)
    before = {v.path: v.numpy() for layer in backbone_bn + head_bn for v in layer.weights}
    trainer.train()
    for layer in backbone_bn:
        for v in layer.weights:  # gamma, beta, moving mean and variance
            np.testing.assert_array_equal(v.numpy(), before[v.path], err_msg=v.path)
    # Inference mode: training=True normalises with the moving statistics too.
    x = tf.random.stateless_normal([2, 4, 4, backbone_bn[0].weights[0].shape[-1]], seed=[1, 2]) * 3.0 + 1.0
    np.testing.assert_allclose(
        backbone_bn[0](x, training=True).numpy(), backbone_bn[0](x, training=False).numpy(), atol=1e-6
    )
    # The head's BatchNorm layers still learn their statistics.
    assert any(not np.array_equal(layer.moving_mean.numpy(), before[layer.moving_mean.path]) for layer in head_bn)


@pytest.mark.slow
def test_a_corrupt_training_record_names_its_shard(synthetic_records, tmp_path):
    data_dir = shutil.copytree(synthetic_records, str(tmp_path / "data"))  # damaged below: a copy
    shard = os.path.join(data_dir, "train-1.tfrecord")
    with open(shard, "r+b") as handle:
        size = handle.seek(0, 2)
        handle.seek(size // 2)
        handle.write(b"\x00" * 64)
    trainer = _trainer(data_dir, str(tmp_path / "run"), steps=8)
    with pytest.raises(ValueError, match=r"Corrupt record in training shard '.*train-1\.tfrecord'"):
        trainer.train()


@pytest.mark.slow
def test_restore_model_takes_a_checkpoint_name_of_the_run_and_refuses_a_missing_one(synthetic_records, tmp_path):
    trainer = _trainer(synthetic_records, str(tmp_path), steps=1)
    trainer.train()
    # `--checkpoint=ckpt-1` as listed in the run directory, from any working directory.
    model, _, _ = restore_model(str(tmp_path), "ckpt-1")
    for restored, trained in zip(_weights(model), _weights(trainer.model)):
        np.testing.assert_array_equal(restored, trained)
    with pytest.raises(ValueError, match=r"--checkpoint='ckpt-9': no such checkpoint .*'best', 'latest'"):
        restore_model(str(tmp_path), "ckpt-9")
    # What export.py records as the file it loaded.
    assert (
        resolve_checkpoint(str(tmp_path), "latest")
        == resolve_checkpoint(str(tmp_path), "ckpt-1")
        == str(tmp_path / "ckpt-1")
    )


@pytest.mark.slow
def test_freeze_backbone_trains_the_head_only(synthetic_records, tmp_path):
    trainer = _trainer(
        synthetic_records,
        str(tmp_path),
        steps=2,
        freeze_backbone=True,
        optimizer_config=OptimizerConfig(initial_lr=0.05, backbone_lr_multiplier=0.1),
    )
    backbone = {v.path: v.numpy() for v in trainer.model.backbone.weights}
    head = {v.path: v.numpy() for v in trainer.model.upsampler.trainable_variables}
    assert backbone and not trainer.model.backbone.trainable_variables
    trainer.train()
    for v in trainer.model.backbone.weights:  # kernels, BN scale/offset and moving statistics
        np.testing.assert_array_equal(v.numpy(), backbone[v.path], err_msg=v.path)
    assert any(not np.array_equal(v.numpy(), head[v.path]) for v in trainer.model.upsampler.trainable_variables)


@pytest.mark.slow
def test_resuming_with_another_model_configuration_is_refused_by_name(synthetic_records, tmp_path):
    """E.g. a run trained with the D-wide head, resumed under the newer D/2 default."""
    _trainer(synthetic_records, str(tmp_path), steps=1, model_overrides=dict(upsampler_num_channels=16)).train()
    resumed = _trainer(synthetic_records, str(tmp_path), steps=2)
    with pytest.raises(ValueError, match=r"upsampler_num_channels: the run has 16, now 0.*--upsampler_num_channels=16"):
        resumed.train()
    assert read_run_config(str(tmp_path))[0].upsampler_num_channels == 16  # not overwritten
    # The data position counts global batches: another batch size would re-read or skip examples.
    other_batch = _trainer(
        synthetic_records, str(tmp_path), steps=2, model_overrides=dict(upsampler_num_channels=16), batch_size=4
    )
    with pytest.raises(ValueError, match=r"batch_size: the run has 2, now 4.*--batch_size=2"):
        other_batch.train()
