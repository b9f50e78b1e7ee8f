"""The start-up banner says what a run is, its first step is logged, and log lines go above the progress bar."""

import logging

import pytest

from hfgd_tf.data import DataConfig
from hfgd_tf.evaluation import EvalConfig
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
from hfgd_tf.train.run_banner import logs_above_progress_bar, run_banner
from tests.conftest import tiny_model_config


def _trainer(data_dir, run_dir, **train):
    return Trainer(
        tiny_model_config(num_classes=8, num_channels=8),
        DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.01),
        TrainConfig(checkpoint_dir=run_dir, batch_size=2, strategy="one_device", **train),
        EvalConfig(eval_batch_size=1),
    )


def test_the_banner_names_model_weights_data_steps_batch_strategy_and_run_directory(synthetic_records, tmp_path):
    run_dir = str(tmp_path / "run")
    trainer = _trainer(synthetic_records, run_dir, train_epoch=3, epoch_steps=4, accumulation_steps=2)
    lines = run_banner(trainer, 0).splitlines()
    assert lines[0].startswith("Model: backbone resnet_tiny, 8 classes, D=8")
    assert f"; {trainer.model.count_params():,} parameters (" in lines[0]
    assert lines[1] == "Weights: random initialisation (no --backbone_weights_path)"
    assert lines[2] == (
        f"Data: synthetic_streets from {synthetic_records}; train split 'train': 16 records; eval split 'val': 4 records; "
        "crop 32x32"
    )
    assert lines[3].startswith(
        "Steps: 12 (3 epochs of 4), from step 0; global batch 2 (2 micro-batches of 1), 1 per replica"
    )
    assert lines[4] == "Strategy: OneDeviceStrategy, 1 replica"
    assert lines[5] == f"Run directory: {run_dir}"
    assert "resumed at step 5" in run_banner(trainer, 5).splitlines()[1]


@pytest.mark.slow
def test_the_first_step_is_logged_with_its_time(synthetic_records, tmp_path, caplog):
    trainer = _trainer(
        synthetic_records,
        str(tmp_path / "run"),
        train_epoch=1,
        epoch_steps=3,
        log_every_steps=50,
        evaluate_every_epoch=False,
    )
    # absl's logger has its own level: parsing absl flags in this process (another test may have) sets it to
    # WARNING, so the root logger's level alone would not let the trainer's INFO lines through.
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="absl"):
        trainer.train()
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("Training run\nModel: ") for m in messages)
    steps = [m.split("  ")[0] for m in messages if m.startswith("step ")]
    assert steps == ["step 1/3", "step 3/3"]  # the first step although log_every_steps=50, then the last
    assert any(
        m.startswith("First step took ") and m.endswith("s (tracing the step function included)") for m in messages
    )


def test_log_records_are_written_in_the_progress_bar_s_external_write_mode():
    events = []

    class Bar:
        @classmethod
        def external_write_mode(cls, file=None, nolock=False):
            class Mode:
                def __enter__(self):
                    events.append("bar cleared")

                def __exit__(self, *exc):
                    events.append("bar redrawn")

            return Mode()

    class Recorder(logging.Handler):
        def emit(self, record):
            events.append(record.getMessage())

    root = logging.getLogger()
    recorder = Recorder(logging.INFO)
    root.addHandler(recorder)
    try:
        with logs_above_progress_bar(Bar):
            logging.getLogger("hfgd_test").warning("a line")
        logging.getLogger("hfgd_test").warning("after")
        assert not any(type(h).__name__ == "_AboveProgressBar" for h in root.handlers)  # handlers restored
    finally:
        root.removeHandler(recorder)
    # (pytest's own handlers on the root logger are wrapped too: each record once per handler.)
    line = events.index("a line")
    assert events[line - 1] == "bar cleared" and events[line + 1] == "bar redrawn"
    assert events[-1] == "after" and events[-2] != "bar cleared"  # after the context: written directly
