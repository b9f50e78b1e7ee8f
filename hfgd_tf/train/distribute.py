"""Creating the `tf.distribute` strategy named by `TrainConfig.strategy`, and the cluster it runs on."""

import json
import os

import tensorflow as tf

STRATEGY_NAMES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def tf_config_for_workers(worker_hosts, task_index, existing=None):
    """The `TF_CONFIG` JSON of a cluster of equal workers (worker 0 is the chief).

    Args:
        worker_hosts: str. Comma-separated `host:port` of every worker, the same list on all of them
            (`--worker_hosts`); "" for none.
        task_index: int. This worker's position in `worker_hosts` (`--task_index`); -1 for none.
        existing: str or None. The `TF_CONFIG` already in the environment: it must describe the same
            cluster and task, or be absent.

    Returns:
        The JSON string, or None when neither `worker_hosts` nor `task_index` is given.

    Raises:
        ValueError: a malformed or repeated host, a `task_index` outside the list or given alone, or a
            conflict with `existing`.
    """
    if not worker_hosts:
        if task_index >= 0:
            raise ValueError(f"--task_index={task_index} needs --worker_hosts (the comma-separated host:port list)")
        return None
    hosts = [host.strip() for host in worker_hosts.split(",")]
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"--worker_hosts must be comma-separated host:port entries (port 1-65535), e.g. "
                f"--worker_hosts=10.0.0.1:2222,10.0.0.2:2222. Received entry {host!r} in --worker_hosts={worker_hosts!r}"
            )
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"--worker_hosts lists a host:port twice. Received: --worker_hosts={worker_hosts!r}")
    if not 0 <= task_index < len(hosts):
        raise ValueError(
            f"--task_index must be this worker's position in --worker_hosts, 0..{len(hosts) - 1} (0 is the chief). "
            f"Received: --task_index={task_index} with {len(hosts)} worker hosts"
        )
    config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task_index}}
    if existing:
        try:
            current = json.loads(existing)
        except json.JSONDecodeError as error:
            raise ValueError(f"The TF_CONFIG environment variable is not valid JSON ({error}): {existing!r}") from None
        if current.get("cluster") != config["cluster"] or current.get("task") != config["task"]:
            raise ValueError(
                f"--worker_hosts/--task_index describe {json.dumps(config)} but the TF_CONFIG environment variable "
                f"already says {existing}; give one or the other (or the same cluster and task in both)"
            )
    return json.dumps(config)


def check_tf_config(text):
    """Checks a `TF_CONFIG` value for MultiWorkerMirroredStrategy; raises ValueError naming what is wrong.

    `TFConfigClusterResolver` accepts a config without a cluster, a task or with an index outside the
    cluster, and then runs every machine as a lone chief that writes the same run directory: refused here.
    """
    if not text:
        raise ValueError(
            "--strategy=multi_worker needs the cluster: set the TF_CONFIG environment variable or give "
            "--worker_hosts and --task_index (for the devices of one machine use --strategy=mirrored)"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"The TF_CONFIG environment variable is not valid JSON ({error}): {text!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    example = '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}'
    if not isinstance(cluster, dict) or not any(
        isinstance(cluster.get(k), list) and cluster[k] for k in ("worker", "chief")
    ):
        raise ValueError(
            f'TF_CONFIG needs a "cluster" with a non-empty "worker" (or "chief") host list, e.g. {example}. Received: {text}'
        )
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(
            f'TF_CONFIG needs a "task" whose "type" is a job of its cluster, e.g. {example}. Received: {text}'
        )
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(
            f"TF_CONFIG task index {index!r} is outside its job's {len(cluster[task['type']])} hosts. Received: {text}"
        )


def configure_workers(worker_hosts, task_index, strategy):
    """Writes `TF_CONFIG` from `--worker_hosts`/`--task_index` (before any TensorFlow op runs).

    Raises:
        ValueError: see `tf_config_for_workers`; also when the flags are given with another strategy
            than "multi_worker", or when `TF_CONFIG` is set but not valid JSON.
    """
    config = tf_config_for_workers(worker_hosts, task_index, os.environ.get("TF_CONFIG"))
    if config is not None and strategy != "multi_worker":
        raise ValueError(f"--worker_hosts/--task_index need --strategy=multi_worker. Received: --strategy={strategy}")
    if config is not None:
        os.environ["TF_CONFIG"] = config
    if strategy == "multi_worker":
        check_tf_config(os.environ.get("TF_CONFIG"))


def resolve_tpu(tpu):
    """Finds the TPU `tpu` with `TPUClusterResolver`, connects to it and initialises it; returns the resolver.

    The one entry point to a TPU for training and evaluation (scripts/train.py --tpu, scripts/evaluate.py
    --strategy=tpu --tpu).

    Args:
        tpu: str. TPU name, `grpc://` address, or "local" for a TPU VM's own chips.

    Raises:
        ValueError: the TPU cannot be found or reached (names the flag).
    """
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        raise ValueError(f"--tpu={tpu!r}: cannot find or initialise the TPU ({error})") from error
    return resolver


def create_strategy(name, tpu=""):
    """Returns a strategy.

    "multi_worker" must be created before any other TensorFlow op runs in the process (collective
    ops are configured when the runtime starts), so the scripts create it first.

    Args:
        name: str. "auto" (TPU if `tpu` is set, else MirroredStrategy over all local GPUs, else the
            one CPU device), "one_device", "mirrored" (all local GPUs, or all logical CPUs when there
            are no GPUs), "multi_worker" (`MultiWorkerMirroredStrategy` over the cluster in the
            `TF_CONFIG` environment variable, checked by `check_tf_config`; all local GPUs or the CPU
            of each worker) or "tpu".
        tpu: str. TPU name or address for "tpu"/"auto".
    """
    if name == "tpu" or (name == "auto" and tpu):
        return tf.distribute.TPUStrategy(resolve_tpu(tpu))
    if name == "multi_worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device" or (name == "auto" and len(gpus) <= 1):
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name in ("mirrored", "auto"):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"Unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")


def is_chief(strategy):
    """Whether this process writes the run's files (checkpoints, logs, best weights, exports).

    True except on the non-chief workers of a `MultiWorkerMirroredStrategy` cluster (worker 0, or the
    "chief" task, is the chief).
    """
    return bool(strategy.extended.should_checkpoint)


def num_workers(strategy):
    """Number of worker processes taking part in each step (1 unless multi-worker)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.extended._num_workers  # pylint: disable=protected-access
    return 1


def end_multi_worker_run(strategy, exit_code=0):
    """Ends a worker of a multi-worker run cleanly: all workers meet, then every process exits at once.

    A worker that finishes first and exits stops sending heartbeats while the chief (which hosts the
    cluster's coordination service) is still tearing TensorFlow down, and the chief then prints "The tasks
    have crashed" after a run that ended well. Here the workers meet at a last collective (so none leaves
    early) and each process ends right after flushing its output, skipping the slow interpreter teardown in
    which the heartbeats stop. Call it last, after every file is written; one-process runs return at once.
    """
    if num_workers(strategy) < 2:
        return
    import logging
    import sys

    strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1)), axis=None)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()  # flushes every handler (absl's too)
    os._exit(exit_code)
