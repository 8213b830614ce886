"""One worker of a two-process MultiWorkerMirroredStrategy run (started by test_distributed.py).

    TF_CONFIG='{"cluster": ..., "task": {"type": "worker", "index": I}}' \\
        python tests/training/mwms_worker.py OUT.json OWN_DIR SHARED_DIR

It creates the strategy first (TensorFlow must not have run anything yet), then writes to
OUT.json what it saw in four parts: which windows it drew from a shuffled, distributed dataset;
a ``fit`` of ``tiny_model`` with its own checkpoint folder OWN_DIR (each worker a different one,
as on separate machines); a run in SHARED_DIR interrupted after epoch 2 and resumed; and a
``Forecaster`` with ``train.strategy="multi_worker"``. Losses, weight checksums, FitResult fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

L, H = 8, 3
TRAIN_WINDOWS, VAL_WINDOWS, BATCH = 45, 20, 16  # 45 = 16 + 16 + 13: an uneven last batch
CONFIG = {"epochs": 5, "learning_rate": 0.05, "lr_schedule": "constant", "patience": None,
          "verbose": 0, "seed": 3}


def frames():
    """Train and validation frames of a noisy sine (windows: 45 and 20)."""
    rng = np.random.default_rng(0)
    n_train, n_val = TRAIN_WINDOWS + L + H - 1, VAL_WINDOWS + L + H - 1
    t = np.arange(n_train + n_val)
    y = np.sin(t / 3.0) + 0.1 * rng.standard_normal(len(t))
    index = pd.date_range("2024-01-01", periods=len(t), freq="h", name="date")
    frame = pd.DataFrame({"y": y}, index=index)
    frame.attrs = {"targets": ["y"], "freq": "h"}
    train, val = frame.iloc[:n_train].copy(), frame.iloc[n_train:].copy()
    train.attrs = val.attrs = dict(frame.attrs)
    return train, val


def datasets(shuffle=False, drop_remainder=False):
    """``make_dataset`` (range + map) of the two frames; unshuffled, for comparing trajectories
    with one process (a distributed dataset draws another shuffle order than a plain one)."""
    from forecast.data import WindowSpec, make_dataset

    spec = WindowSpec(L, H, targets=("y",))
    train, val = frames()
    return (make_dataset(train, spec, batch_size=BATCH, shuffle=shuffle, seed=1,
                         drop_remainder=drop_remainder),
            make_dataset(val, spec, batch_size=BATCH))


def shards(strategy, epochs=2):
    """The window numbers this worker trains on in each epoch of a shuffled, batched range (the
    shape of ``make_dataset``'s pipeline), as the training loop distributes it."""
    import tensorflow as tf

    from forecast.training.loop import distribute

    dataset = tf.data.Dataset.range(TRAIN_WINDOWS).shuffle(TRAIN_WINDOWS, seed=1)
    dataset = dataset.batch(BATCH).map(lambda k: k * 1)
    distributed = distribute(strategy, dataset)
    seen = []
    for _ in range(epochs):
        batches = [strategy.experimental_local_results(b)[0].numpy().tolist()
                   for b in distributed]
        seen.append({"steps": len(batches), "windows": sum(batches, [])})
    return seen


def tiny_model(seed=0):
    import keras

    from forecast.training import set_seed

    set_seed(seed)
    inputs = keras.Input((L, 1))
    x = keras.layers.Dense(H)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Reshape((H, 1))(x))


def checksum(weights) -> str:
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return digest.hexdigest()


class Interrupt(Exception):
    pass


def interrupt_after(epoch):
    import keras

    class InterruptAfter(keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index + 1 == epoch:
                raise Interrupt(f"killed after epoch {epoch}")

    return InterruptAfter()


def main(out_path: str, checkpoint_dir: str, shared_dir: str) -> None:
    from forecast.training import make_strategy

    strategy = make_strategy("multi_worker")  # before TensorFlow runs anything

    from forecast.forecaster import Forecaster
    from forecast.training import TrainConfig, fit, worker_role

    role = worker_role(strategy)
    seen = shards(strategy)
    with strategy.scope():
        model = tiny_model()
    train_ds, val_ds = datasets()
    result = fit(model, train_ds, val_ds, TrainConfig(**CONFIG, checkpoint_dir=checkpoint_dir),
                 strategy=strategy)
    report = {
        "is_chief": role.is_chief, "task_index": role.task_index, "shards": seen,
        "history": result.history, "checksum": checksum(model.get_weights()),
        "weights_sum": float(sum(np.abs(w).sum() for w in model.get_weights())),
        "strategy": result.strategy, "replicas": result.replicas, "workers": result.workers,
        "checkpoint_path": str(result.checkpoint_path) if result.checkpoint_path else None,
        "checkpoint_files": sorted(os.listdir(checkpoint_dir)) if os.path.isdir(
            checkpoint_dir) else None,
    }

    # killed after epoch 2 (both workers), then a fresh model resumes from the chief's backup
    config = TrainConfig(**CONFIG, checkpoint_dir=shared_dir)
    with strategy.scope():
        model = tiny_model()
    try:
        fit(model, train_ds, val_ds, config, strategy=strategy, callbacks=[interrupt_after(2)])
    except Interrupt:
        pass
    from forecast.training.loop import _ReplicaSum

    _ReplicaSum(strategy)([1.0])  # a barrier: the chief has written its backup of epoch 2
    with strategy.scope():
        model = tiny_model(seed=123)
    resumed = fit(model, train_ds, val_ds, config, strategy=strategy)
    report["resume"] = {
        "epochs": resumed.epochs, "initial_epoch": resumed.initial_epoch,
        "history": resumed.history, "checksum": checksum(model.get_weights()),
    }

    train, val = frames()
    forecaster = Forecaster({
        "horizon": H, "lookback": L, "calendar": False, "batch_size": BATCH,
        "model": {"units": 4}, "train": {**CONFIG, "epochs": 3, "strategy": "multi_worker"},
    }).fit(train, val)
    report["forecaster"] = {
        "history": forecaster.fit_result.history,
        "checksum": checksum(forecaster.model.get_weights()),
        "strategy": forecaster.fit_result.strategy,
        "replicas": forecaster.fit_result.replicas,
        "forecast": forecaster.predict(val)["y"].tolist(),  # the detached copy, no collective
    }
    with open(out_path, "w") as handle:
        json.dump(report, handle)
    _ReplicaSum(strategy)([1.0])  # leave together: the chief hosts the cluster's coordination


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
