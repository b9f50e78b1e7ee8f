"""Multi-worker training and evaluation (two worker processes on 127.0.0.1), and preemption (SIGTERM).

Two workers with one CPU each train with MultiWorkerMirroredStrategy on the global batch of a
one-process run and end with its weights; evaluation under two workers gives its confusion matrix.
A SIGTERM in the middle of training saves a checkpoint at the next step boundary; rerunning ends with
the weights of an uninterrupted run.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.data.pipeline import build_train_dataset
from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.evaluation import EvalConfig, evaluate
from hfgd_tf.evaluation.evaluator import build_distributed_eval_dataset
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
from hfgd_tf.train import trainer as trainer_module
from hfgd_tf.train.checkpoints import read_run_config, restore_model
from hfgd_tf.train.distribute import configure_workers, tf_config_for_workers
from hfgd_tf.train.preemption import PREEMPTED_EXIT_CODE, PreemptionWatcher
from tests.conftest import ROOT, tiny_model_config

SLOW_STEPS_TRAIN = os.path.join(ROOT, "tests", "train", "train_with_slow_steps.py")
TIMEOUT = 240  # seconds for any one script run


def _train_arguments(data_dir, checkpoint_dir, *extra):
    # GroupNorm (no batch statistics: one worker's half-batch normalises as the whole batch does) and SGD
    # (Adam's first steps turn float32 summation-order noise into full-LR differences; see
    # tests/train/test_distributed.py).
    return [
        "--flagfile=experiments/demo.cfg",
        f"--data_dir={data_dir}",
        f"--checkpoint_dir={checkpoint_dir}",
        "--crop_height=64",
        "--crop_width=64",
        "--num_channels=8",
        "--norm_method=group_norm",
        "--optimizer=sgd",
        "--initial_lr=0.05",
        "--warmup_steps=0",
        "--batch_size=4",
        "--train_epoch=2",
        "--epoch_steps=3",
        "--log_every_steps=1",
        "--noevaluate_every_epoch",
        "--shuffle_buffer=8",
        "--eval_batch_size=2",
        *extra,
    ]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start(command, **kwargs):
    return subprocess.Popen(
        [sys.executable] + command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def _finish_all(processes, timeout=TIMEOUT):
    """Waits for every process (bounded), kills them all whatever happens; returns their (code, output)."""
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=timeout)
            results.append((process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def _workers(script_arguments, tmp_dir, extra_env=None):
    """Starts worker 0 and worker 1 of a 127.0.0.1 cluster running `script_arguments(task_index)`."""
    hosts = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    env = dict(os.environ, TMPDIR=tmp_dir, **(extra_env or {}))
    env.pop("TF_CONFIG", None)
    return [_start(script_arguments(hosts, index), env=env) for index in range(2)]


def _train_on_two_workers(data_dir, checkpoint_dir, worker_tmp, *extra, timeout=TIMEOUT):
    """Runs `scripts/train.py` (the shared arguments, then `extra`) as both workers of a two-worker cluster, each
    with `checkpoint_dir` (a shared filesystem: only the chief writes it); returns their (code, output)."""
    return _finish_all(
        _workers(
            lambda hosts, index: (
                ["scripts/train.py"]
                + _train_arguments(
                    data_dir,
                    checkpoint_dir,
                    *extra,
                    "--strategy=multi_worker",
                    f"--worker_hosts={hosts}",
                    f"--task_index={index}",
                )
            ),
            worker_tmp,
        ),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    # Not the shared synthetic_records: 5 eval images, 3 on worker 0 and 2 (plus 1 padding image) on worker 1.
    return write_synthetic_tfrecords(str(tmp_path_factory.mktemp("data")), 16, 5, 64, 64, examples_per_shard=4)


@pytest.fixture(scope="module")
def single_run(data_dir, tmp_path_factory):
    """A one-process run (one_device) of the shared arguments: the reference of every test here."""
    checkpoint_dir = str(tmp_path_factory.mktemp("single"))
    [(code, output)] = _finish_all([_start(["scripts/train.py"] + _train_arguments(data_dir, checkpoint_dir))])
    assert code == 0, output[-3000:]
    return checkpoint_dir


# === Configuration (fast) ===
def test_worker_hosts_and_task_index_give_tf_config():
    config = json.loads(tf_config_for_workers("10.0.0.1:2222, 10.0.0.2:2222", 1))
    assert config == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    assert tf_config_for_workers("", -1) is None
    # The same cluster and task already in TF_CONFIG is accepted.
    assert tf_config_for_workers(
        "h:1,h:2",
        0,
        existing=json.dumps({"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 0}}),
    )


@pytest.mark.parametrize(
    "hosts, index, existing, message",
    [
        ("h:1,h:2", 2, None, r"--task_index must be .* 0\.\.1"),
        ("h:1,h:2", -1, None, "--task_index must be"),
        ("", 0, None, "--task_index=0 needs --worker_hosts"),
        ("h:1,h", 0, None, "Received entry 'h'"),
        ("h:1,h:99999", 0, None, "port 1-65535"),
        ("h:1,h:1", 0, None, "twice"),
        ("h:1,h:2", 0, '{"cluster": {"worker": ["h:1", "h:3"]}, "task": {"type": "worker", "index": 0}}', "TF_CONFIG"),
        ("h:1,h:2", 0, '{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 1}}', "TF_CONFIG"),
        ("h:1,h:2", 0, "{not json", "not valid JSON"),
    ],
)
def test_inconsistent_worker_flags_are_refused(hosts, index, existing, message):
    with pytest.raises(ValueError, match=message):
        tf_config_for_workers(hosts, index, existing)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "needs the cluster: set the TF_CONFIG"),
        ("[1, 2]", 'needs a "cluster"'),
        ('{"task": {"type": "worker", "index": 0}}', 'needs a "cluster"'),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', 'needs a "cluster"'),
        ('{"cluster": {"worker": ["h:1", "h:2"]}}', 'needs a "task"'),
        ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "ps", "index": 0}}', 'needs a "task"'),
        (
            '{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 5}}',
            "outside its job's 2 hosts",
        ),
    ],
)
def test_a_tf_config_that_would_run_machines_as_lone_chiefs_is_refused(tf_config, message, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        configure_workers("", -1, "multi_worker")
    configure_workers("", -1, "mirrored")  # other strategies do not read TF_CONFIG


@pytest.mark.slow
def test_worker_flags_without_multi_worker_strategy_are_refused_by_train(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "--flagfile=experiments/demo.cfg",
            f"--checkpoint_dir={tmp_path}",
            "--worker_hosts=127.0.0.1:1,127.0.0.1:2",
            "--task_index=0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "Invalid flags: --worker_hosts/--task_index need --strategy=multi_worker" in result.stderr


@pytest.mark.slow
def test_two_input_pipelines_split_every_global_batch_of_one_pipeline(data_dir):
    config = DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=8)
    for start in (0, 5):  # 5 steps of 4: the resumed stream starts inside the second epoch of 16 records
        whole = list(build_train_dataset(config, 4, initial_step=start).take(3))
        halves = [
            list(build_train_dataset(config, 4, tf.distribute.InputContext(2, index, 2), initial_step=start).take(3))
            for index in range(2)
        ]
        for step, (images, labels) in enumerate(whole):
            assert halves[0][step][0].shape == (2, 32, 32, 3)
            np.testing.assert_array_equal(np.concatenate([h[step][0] for h in halves]), images.numpy())
            np.testing.assert_array_equal(np.concatenate([h[step][1] for h in halves]), labels.numpy())


def test_sigterm_sets_the_stop_flag_agreed_over_replicas_and_the_handler_is_restored(mirrored_strategy):
    before = signal.getsignal(signal.SIGTERM)
    watcher = PreemptionWatcher(mirrored_strategy)
    # The cross-worker agreement (an all-reduce of the flag), run here over the two local replicas.
    watcher._multi_worker, watcher._agree = True, tf.function(watcher._sum_over_replicas)
    with watcher:
        assert not watcher.stop_requested()
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.time() + 10
        while not watcher.received and time.time() < deadline:
            time.sleep(0.01)
        assert watcher.received and watcher.stop_requested()
        # A second SIGTERM gets the previous handler (by default: the process ends at once).
        assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_a_non_chief_worker_writes_nothing_in_the_run_directory(data_dir, tmp_path, monkeypatch):
    # In one process: the trainer taken for a non-chief worker (what is_chief says on workers 1..N-1).
    monkeypatch.setattr(trainer_module, "is_chief", lambda strategy: False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)
    os.makedirs(tmp_path / "tmp")
    run_dir = str(tmp_path / "run")
    trainer = Trainer(
        tiny_model_config(num_classes=8, num_channels=8),
        DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.01),
        TrainConfig(
            checkpoint_dir=run_dir,
            batch_size=2,
            train_epoch=2,
            epoch_steps=1,
            strategy="one_device",
            max_checkpoints_to_keep=1,
        ),
        EvalConfig(eval_batch_size=1),
    )
    assert trainer.manager.directory.startswith(str(tmp_path / "tmp"))
    metrics = trainer.train()
    assert metrics is not None and metrics["num_images"] == 5, "a non-chief worker still evaluates (collective)"
    assert not os.path.exists(run_dir), "no run config, logs, checkpoints or best weights from a non-chief"
    # (AutoGraph leaves its generated modules in TMPDIR too.)
    assert [n for n in os.listdir(tmp_path / "tmp") if n.startswith("hfgd_worker_")] == [], "temporary checkpoints"


# === Two worker processes (slow) ===
@pytest.mark.slow
def test_two_workers_train_and_evaluate_as_one_process(data_dir, single_run, tmp_path):
    chief_dir, worker_tmp = str(tmp_path / "chief"), str(tmp_path / "worker_tmp")
    os.makedirs(worker_tmp)
    results = _train_on_two_workers(data_dir, chief_dir, worker_tmp)
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index}:\n{output[-4000:]}"
        assert "step 6/6" in output
    single, _, _ = restore_model(single_run, "latest")
    workers, _, _ = restore_model(chief_dir, "latest")
    assert tf.train.latest_checkpoint(chief_dir).endswith("ckpt-6")
    for a, b in zip(single.weights, workers.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)
    # Only the chief's files; the other worker's temporary checkpoints are gone.
    assert sorted(os.listdir(chief_dir)) == sorted(os.listdir(single_run))
    assert [name for name in os.listdir(worker_tmp) if name.startswith("hfgd_worker_")] == []

    # Evaluation under two workers (TF_CONFIG given directly) gives the one-process confusion matrix.
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    env = dict(os.environ, TMPDIR=worker_tmp)
    evaluations = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
        arguments = [
            "scripts/evaluate.py",
            f"--checkpoint_dir={chief_dir}",
            "--checkpoint=latest",
            "--strategy=multi_worker",
            "--eval_batch_size=2",
            f"--results_json={tmp_path / f'eval_{index}.json'}",
        ]
        evaluations.append(_start(arguments, env=dict(env, TF_CONFIG=tf_config)))
    for index, (code, output) in enumerate(_finish_all(evaluations)):
        assert code == 0, f"worker {index}:\n{output[-4000:]}"
    assert not os.path.exists(tmp_path / "eval_1.json"), "only the chief writes the results"
    with open(tmp_path / "eval_0.json") as handle:
        two_workers = json.load(handle)
    _, data_config, run = read_run_config(chief_dir)
    eval_config = EvalConfig(**{**run["eval"], "eval_batch_size": 1})
    strategy = tf.distribute.get_strategy()
    one_process = evaluate(
        workers,
        build_distributed_eval_dataset(strategy, data_config, 1),
        data_config.info.num_classes,
        data_config.info.ignore_label,
        eval_config,
        strategy=strategy,
    )
    assert two_workers["num_images"] == one_process["num_images"] == 5
    assert two_workers["confusion_matrix"] == one_process["confusion_matrix"]


@pytest.mark.slow
def test_sigterm_saves_at_a_step_boundary_and_the_rerun_ends_as_an_uninterrupted_run(data_dir, single_run, tmp_path):
    checkpoint_dir = str(tmp_path / "preempted")
    arguments = _train_arguments(data_dir, checkpoint_dir)
    process = _start([SLOW_STEPS_TRAIN] + arguments, env=dict(os.environ, HFGD_TEST_STEP_SECONDS="2"))
    try:
        lines, deadline = [], time.time() + TIMEOUT
        # Steps take >= 2 s: the signal sent when step 1 is logged arrives before step 1's end-of-step check
        # or during step 2, so the run stops after step 1 or 2, neither an epoch end (--epoch_steps=3): only
        # the preemption saves that checkpoint.
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "step 1/6" in line:
                process.send_signal(signal.SIGTERM)
                break
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    output = "".join(lines) + output
    assert process.returncode == PREEMPTED_EXIT_CODE, output[-4000:]
    stopped = tf.train.latest_checkpoint(checkpoint_dir)
    assert stopped is not None and stopped.endswith(("ckpt-1", "ckpt-2")), output[-4000:]
    assert f"Preempted: stopped at step {stopped[-1]} after saving its checkpoint" in output, output[-4000:]
    assert "step 3/6" not in output
    # Committed whole: the index and data files, no temporary files of a save in progress.
    assert os.path.isfile(stopped + ".index")
    assert not [name for name in os.listdir(checkpoint_dir) if "temp" in name]

    [(code, output)] = _finish_all([_start(["scripts/train.py"] + arguments)])
    assert code == 0, output[-4000:]
    assert f"Resumed from {stopped} at step {stopped.rsplit('-', 1)[1]}" in output
    straight, _, _ = restore_model(single_run, "latest")
    resumed, _, _ = restore_model(checkpoint_dir, "latest")
    assert tf.train.latest_checkpoint(checkpoint_dir).endswith("ckpt-6")
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


@pytest.mark.slow
def test_two_workers_with_sync_batch_norm_match_one_process_and_end_cleanly(data_dir, tmp_path):
    # Synchronised BatchNorm normalises each worker's half-batch with the statistics of the whole global
    # batch, so the two-worker steps are the one-process steps up to float summation order (plain
    # per-replica BatchNorm would not be: its statistics are those of the half-batch).
    sync = ("--norm_method=sync_batch_norm", "--train_epoch=1")
    single_dir, chief_dir, worker_tmp = str(tmp_path / "single"), str(tmp_path / "chief"), str(tmp_path / "tmp")
    os.makedirs(worker_tmp)
    [(code, output)] = _finish_all([_start(["scripts/train.py"] + _train_arguments(data_dir, single_dir, *sync))])
    assert code == 0, output[-3000:]
    # Tracing a step with a collective per BatchNorm layer takes minutes on a busy 2-core machine.
    results = _train_on_two_workers(data_dir, chief_dir, worker_tmp, *sync, timeout=3 * TIMEOUT)
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index}:\n{output[-4000:]}"
        assert "step 3/3" in output
        assert "The tasks have crashed" not in output and "stopped sending heartbeats" not in output, output[-3000:]
        # The run directory and the banner are the chief's; TensorFlow's lines are printed once, without the
        # collective notes of every trace.
        assert ("Checkpoints and TensorBoard logs" in output) == (index == 0)
        assert ("Run directory:" in output) == (index == 0)
        assert "INFO:tensorflow:" not in output and "Collective all_reduce tensors" not in output
    single, _, _ = restore_model(single_dir, "latest")
    workers, _, _ = restore_model(chief_dir, "latest")
    batch_norm_statistics = [w.path for w in single.weights if w.path.endswith(("moving_mean", "moving_variance"))]
    assert batch_norm_statistics, "the model has BatchNorm statistics to compare"
    for a, b in zip(single.weights, workers.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)


@pytest.mark.slow
def test_a_non_finite_loss_stops_both_workers_together_with_the_same_message(data_dir, tmp_path):
    # An absurd learning rate: the loss is NaN/Inf within a few steps, at the same step on both workers (their
    # health counters are reduced across workers), so both stop with the same message and exit status 1, and
    # neither waits for the other (the test's timeout). Whether the chief would report the other worker as
    # crashed without the final meeting is a race of the interpreters' teardown: the check below catches it
    # only when it happens.
    chief_dir, worker_tmp = str(tmp_path / "chief"), str(tmp_path / "worker_tmp")
    os.makedirs(worker_tmp)
    results = _train_on_two_workers(data_dir, chief_dir, worker_tmp, "--initial_lr=1e12")
    messages = []
    for index, (code, output) in enumerate(results):
        assert code == 1, f"worker {index}:\n{output[-4000:]}"
        assert "The tasks have crashed" not in output and "stopped sending heartbeats" not in output, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        [message] = [line for line in output.splitlines() if line.startswith("Training stopped: ")]
        # The last good checkpoint it names is the chief's run directory or the other worker's temporary one.
        messages.append(message.split(" The last good checkpoint")[0])
    assert "NaN/Inf" in messages[0] or "Loss is" in messages[0], messages[0]
    assert messages[0] == messages[1]
