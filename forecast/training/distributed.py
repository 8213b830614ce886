"""``tf.distribute`` strategies by name, and which worker of a cluster this process is.

``TrainConfig.strategy`` names how a model trains:

- ``"default"``: one process, one device (no strategy).
- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over every local GPU or, without GPUs, every
  logical CPU device; one replica per device, gradients summed across them.
- ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy``: the same program runs on
  each machine of a cluster described by the ``TF_CONFIG`` environment variable, and the replicas
  of all workers train in lockstep (collective all-reduce). Task 0 of ``worker`` (or the
  ``chief`` task, when the cluster has one) is the chief: only it writes checkpoints, MLflow runs
  and saved models.

Keras's ``Model.fit`` cannot train under ``MultiWorkerMirroredStrategy`` with Keras 3.15 /
TensorFlow 2.21 (keras-team/keras#20585), so ``forecast.training.fit`` trains that case with its
own loop (``forecast.training.loop``).

Example:
    >>> strategy = make_strategy("mirrored")            # before building the model
    >>> with strategy.scope():
    ...     model = build_model("many_to_one", spec, options)
    >>> fit(model, train_ds, val_ds, config, strategy=strategy)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import tensorflow as tf

from forecast.errors import ConfigError
from forecast.options import STRATEGIES

logger = logging.getLogger("forecast.training")
TF_CONFIG = "TF_CONFIG"
_TASK_TYPES = ("chief", "worker")
_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)

# One strategy of each kind per process, reused by every later fit (backtest folds, a second
# Forecaster): TensorFlow configures the collective ops of MultiWorkerMirroredStrategy once, at
# program startup, and two MirroredStrategy objects in one process number their collective ops
# alike, so the second one's gradient all-reduce would collide with the first one's.
_multi_worker_strategy = None
_mirrored_strategy = None


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in a ``TF_CONFIG`` cluster.

    Attributes:
        task_type: ``"chief"`` or ``"worker"``.
        task_index: the index of this task among the tasks of its type.
        workers: how many training processes the cluster has (chief and workers).
        is_chief: whether this process writes checkpoints, logs and models.
    """

    task_type: str
    task_index: int
    workers: int
    is_chief: bool


def read_tf_config(environ=None) -> ClusterRole:
    """Reads and checks the ``TF_CONFIG`` environment variable of a multi-worker run.

    Args:
        environ: the environment to read (default ``os.environ``).

    Returns:
        This process's ``ClusterRole``.

    Raises:
        ConfigError: ``TF_CONFIG`` is missing, not JSON, or does not describe a cluster of
            ``chief``/``worker`` tasks of ``"host:port"`` addresses with this task among them.

    Example:
        >>> read_tf_config({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
        ...                                          "task": {"type": "worker", "index": 1}})})
        ClusterRole(task_type='worker', task_index=1, workers=2, is_chief=False)
    """
    environ = os.environ if environ is None else environ
    text = environ.get(TF_CONFIG, "")
    where = "train.strategy='multi_worker'"
    if not text.strip():
        raise ConfigError(
            f"{where} reads the cluster from the {TF_CONFIG} environment variable, which is not "
            f"set. Set it in every worker's environment, e.g. {_EXAMPLE} (a different index on "
            "each worker; index 0 is the chief), or use train.strategy='mirrored' on one machine."
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{TF_CONFIG} is not valid JSON ({exc}): {text!r}. Expected e.g. "
                          f"{_EXAMPLE}.") from None

    def bad(problem: str) -> ConfigError:
        return ConfigError(f"{TF_CONFIG} {problem}. Received: {text}. Expected e.g. {_EXAMPLE}.")

    if not isinstance(data, dict):
        raise bad("must be a JSON object with 'cluster' and 'task'")
    cluster, task = data.get("cluster"), data.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise bad("needs 'cluster': an object mapping 'worker' (and optionally 'chief') to "
                  "lists of 'host:port' addresses")
    unknown = sorted(set(cluster) - set(_TASK_TYPES))
    if unknown:
        raise bad(f"has cluster jobs {unknown}; multi_worker training takes only "
                  f"{list(_TASK_TYPES)}")
    for job, addresses in cluster.items():
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and ":" in a for a in addresses)):
            raise bad(f"cluster.{job} must be a non-empty list of 'host:port' strings")
    if len(cluster.get("chief", [])) > 1:
        raise bad("cluster.chief must hold one address")
    if not isinstance(task, dict):
        raise bad("needs 'task': {\"type\": \"worker\", \"index\": N}")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise bad(f"task.type must be one of the cluster's jobs {sorted(cluster)}; got "
                  f"{task_type!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not (
            0 <= index < len(cluster[task_type])):
        raise bad(f"task.index must be an integer from 0 to {len(cluster[task_type]) - 1} "
                  f"(cluster.{task_type} has {len(cluster[task_type])} addresses); got {index!r}")
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0
                                        and "chief" not in cluster)
    workers = sum(len(addresses) for addresses in cluster.values())
    return ClusterRole(task_type, index, workers, is_chief)


def make_strategy(name: str):
    """The ``tf.distribute`` strategy named by ``TrainConfig.strategy``.

    Call it before TensorFlow runs anything else in the process (``multi_worker`` needs that),
    then build the model inside ``strategy.scope()`` and pass the strategy to ``fit``.

    Args:
        name: ``"default"``, ``"mirrored"`` or ``"multi_worker"``.

    Returns:
        None for ``"default"``; a ``tf.distribute.MirroredStrategy`` over every local GPU (or,
        without GPUs, every logical CPU device); a ``tf.distribute.MultiWorkerMirroredStrategy``
        for the cluster in ``TF_CONFIG``. The same object on every call in one process.

    Raises:
        ConfigError: an unknown name; for ``multi_worker``, a missing or malformed
            ``TF_CONFIG``, or TensorFlow already initialised in this process.

    Example:
        >>> make_strategy("mirrored").num_replicas_in_sync    # on a machine with 2 GPUs
        2
    """
    if name == "default":
        return None
    if name == "mirrored":
        return _mirrored()
    if name == "multi_worker":
        return _multi_worker()
    raise ConfigError(f"train.strategy must be one of {list(STRATEGIES)}. Received: {name!r}.")


def _mirrored():
    global _mirrored_strategy
    if _mirrored_strategy is not None:
        return _mirrored_strategy
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    if len(devices) == 1:
        logger.warning(
            "train.strategy='mirrored' found one device (%s): training runs as one replica, "
            "like the default strategy. It pays off with several GPUs (or, for tests, CPU "
            "logical devices from tf.config.set_logical_device_configuration).", devices[0])
    else:
        logger.info("MirroredStrategy over %d devices: %s", len(devices), ", ".join(devices))
    _mirrored_strategy = tf.distribute.MirroredStrategy(devices)
    return _mirrored_strategy


def _multi_worker():
    global _multi_worker_strategy
    role = read_tf_config()
    if _multi_worker_strategy is not None:
        return _multi_worker_strategy
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        if "program startup" not in str(exc):
            raise
        raise ConfigError(
            "train.strategy='multi_worker' must create its strategy before TensorFlow runs "
            "anything in the process (it configures collective ops once, at startup). Start "
            "each worker as a fresh process (e.g. `forecast train ... --strategy multi_worker`), "
            "or call forecast.training.make_strategy('multi_worker') first thing."
        ) from None
    logger.info("MultiWorkerMirroredStrategy: %s %d of a %d-worker cluster%s, %d replicas in "
                "sync", role.task_type, role.task_index, role.workers,
                " (chief)" if role.is_chief else "", strategy.num_replicas_in_sync)
    _multi_worker_strategy = strategy
    return strategy


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` (trained by our own loop)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def strategy_name(strategy) -> str:
    """``"default"``, ``"mirrored"``, ``"multi_worker"`` or the class name of another strategy."""
    if strategy is None:
        return "default"
    if is_multi_worker(strategy):
        return "multi_worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return type(strategy).__name__


def worker_role(strategy) -> ClusterRole:
    """This process's ``ClusterRole`` under ``strategy`` (a lone chief for local strategies).

    Args:
        strategy: a ``tf.distribute.Strategy`` or None.

    Returns:
        The role; for anything but a multi-worker strategy, ``ClusterRole("chief", 0, 1, True)``.
    """
    if not is_multi_worker(strategy):
        return ClusterRole("chief", 0, 1, True)
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    jobs = resolver.cluster_spec().as_dict()
    if task_type is None:  # no TF_CONFIG: a local MultiWorkerMirroredStrategy
        return ClusterRole("chief", 0, 1, True)
    workers = sum(len(jobs.get(job, [])) for job in _TASK_TYPES)
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                        and "chief" not in jobs)
    return ClusterRole(task_type, int(task_id), max(workers, 1), is_chief)
