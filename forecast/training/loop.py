"""The training loop ``fit`` uses under ``MultiWorkerMirroredStrategy``.

Why not ``Model.fit``: with Keras 3.15 / TensorFlow 2.21 it fails under this strategy
(keras-team/keras#20585). Keras's TensorFlow trainer calls ``strategy.reduce("MEAN", batch,
axis=None)`` on the whole ``(inputs, targets)`` tuple of ``PerReplica`` values to build the model
symbolically (``_maybe_symbolic_build``), and the collective strategy cannot reduce a tuple
(``ValueError: Attempt to convert a value (PerReplica:{...}) ... to a Tensor``); past that, its
``reduce_per_replica`` reduces each scalar loss with ``strategy.reduce("MEAN", v, axis=0)``
(``Invalid reduction dimension 0 for input with 0 dimensions``).

This loop does what ``Model.fit`` would, with the public ``tf.distribute`` API only:

- the datasets are split by ``strategy.experimental_distribute_dataset`` with the ``DATA``
  auto-shard policy: each global batch of ``batch_size`` windows is cut into one piece per
  replica, so every worker runs the same number of steps and the cluster sees each window once
  per epoch (the shuffle is seeded identically on every worker);
- one ``tf.function`` step runs ``strategy.run``: each replica's loss is the *sum* of its
  per-element losses divided by the element count of the whole global batch (an all-reduce), so
  the gradients the optimizer sums across replicas (``apply_gradients`` in the replica context)
  are those of the global-batch mean, uneven last batches included;
- the logged ``loss`` and ``val_loss`` are ``strategy.reduce(SUM)`` totals over all replicas
  divided by their element counts: the same weighted means ``Model.fit`` logs, and the same
  numbers on every worker, so EarlyStopping, ReduceLROnPlateau and the divergence guard decide
  the same on all of them; a stop requested by any callback is agreed at each epoch's end.
- Keras callbacks run through ``keras.callbacks.CallbackList`` (a progress bar on the chief only).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from forecast.errors import ConfigError, ModelError

_SUM = tf.distribute.ReduceOp.SUM


def distribute(strategy, dataset):
    """``dataset`` split across the replicas of all workers (``DATA`` auto-sharding)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _stack_sum(strategy, per_replica):
    return strategy.reduce(_SUM, per_replica, axis=None)


class _Steps:
    """The compiled train and evaluation steps of one model under one strategy."""

    def __init__(self, model, loss, strategy):
        self.model, self.loss, self.strategy = model, loss, strategy

    def _loss_sum(self, batch, training):
        """Per replica: (sum of the per-element losses, element count, regularisation)."""
        x, y = batch
        y_pred = self.model(x, training=training)
        values = self.loss.call(tf.cast(y, y_pred.dtype), y_pred)  # e.g. [B, H] for mse
        count = tf.cast(tf.size(values), tf.float32)
        extra = tf.add_n(self.model.losses) if self.model.losses else tf.constant(0.0)
        return tf.reduce_sum(tf.cast(values, tf.float32)), count, tf.cast(extra, tf.float32)

    def _train_replica(self, batch):
        model, context = self.model, tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            total, count, extra = self._loss_sum(batch, training=True)
            # each replica's share of the global-batch mean: its sum over the global count
            global_count = context.all_reduce(_SUM, tf.stop_gradient(count))
            loss = total / global_count + extra / self.strategy.num_replicas_in_sync
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return tf.stack([total + extra * count, count])

    def _test_replica(self, batch):
        total, count, extra = self._loss_sum(batch, training=False)
        return tf.stack([total + extra * count, count])

    def train_step(self, element_spec):
        """A ``tf.function``: one global batch → [loss sum, element count] over all replicas."""
        return self._global_step(self._train_replica, element_spec)

    def test_step(self, element_spec):
        """Like ``train_step`` without the update (validation)."""
        return self._global_step(self._test_replica, element_spec)

    def _global_step(self, replica_fn, element_spec):
        strategy = self.strategy

        @tf.function(input_signature=[element_spec])
        def step(batch):
            return _stack_sum(strategy, strategy.run(replica_fn, args=(batch,)))

        return step


class _ReplicaSum:
    """Sums a small float vector over all replicas of all workers (a collective)."""

    def __init__(self, strategy):
        @tf.function
        def reduce(values):
            return _stack_sum(strategy, strategy.run(tf.identity, args=(values,)))

        self._reduce = reduce

    def __call__(self, values) -> np.ndarray:
        return self._reduce(tf.constant(values, tf.float32)).numpy()


def agree_on_epoch(replica_sum: _ReplicaSum, epoch: int) -> bool:
    """Whether every worker resumes at the same ``epoch`` (a collective: call it on all)."""
    total, squares, replicas = replica_sum([epoch, epoch * epoch, 1.0])
    return bool(np.isclose(total * total, squares * replicas))


def train_loop(model, train_ds, val_ds, *, loss, strategy, epochs: int, callbacks: list,
               verbose: int, show_progress: bool) -> keras.callbacks.History:
    """Trains ``model`` like ``Model.fit(train_ds, validation_data=val_ds, epochs=...)``.

    Args:
        model: a compiled Keras model built in ``strategy.scope()``.
        train_ds: a ``tf.data.Dataset`` of ``(inputs, targets)`` global batches.
        val_ds: the validation dataset, or None.
        loss: the ``keras.losses.Loss`` (its ``call`` gives the per-element losses).
        strategy: the ``tf.distribute`` strategy (``MultiWorkerMirroredStrategy``).
        epochs: the last epoch to run (resumed runs start after the backup's epoch).
        callbacks: Keras callbacks, called as ``Model.fit`` calls them.
        verbose: the progress bar's verbosity (Keras's 0, 1 or 2).
        show_progress: whether this worker shows the progress bar (the chief).

    Returns:
        The ``keras.callbacks.History`` of the epochs run.

    Raises:
        ModelError: the model or its optimizer is not set up (not compiled or not built).
        ConfigError: the workers restored different epochs from their backups (a
            ``checkpoint_dir`` that not every worker can read).
    """
    if model.optimizer is None or not model.built:
        raise ModelError("train_loop needs a built model compiled with an optimizer.")
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    dist_train = distribute(strategy, train_ds)
    dist_val = distribute(strategy, val_ds) if val_ds is not None else None
    steps = _Steps(model, loss, strategy)
    train_step = steps.train_step(dist_train.element_spec)
    test_step = steps.test_step(dist_val.element_spec) if dist_val is not None else None
    n_steps = int(train_ds.cardinality().numpy())
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], add_history=False, add_progbar=show_progress and verbose != 0,
        verbose=verbose, epochs=epochs, steps=n_steps if n_steps > 0 else None, model=model,
    )

    model.stop_training = False
    callback_list.on_train_begin()
    # BackupAndRestore sets this, as Model.fit reads it (keras/src/backend/tensorflow/trainer.py)
    initial_epoch = int(getattr(model, "_initial_epoch", None) or 0)
    replica_sum = _ReplicaSum(strategy)
    if not agree_on_epoch(replica_sum, initial_epoch):
        raise ConfigError(
            f"this worker resumes after epoch {initial_epoch} but another worker does not: "
            "train.checkpoint_dir must be a folder every worker reads (a shared filesystem), "
            "where the chief keeps the backup the others restore; or delete its backup/ folder "
            "to start over."
        )
    logs = None
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        totals = np.zeros(2)
        for step, batch in enumerate(dist_train):
            callback_list.on_train_batch_begin(step)
            totals += train_step(batch).numpy()
            callback_list.on_train_batch_end(step, {"loss": totals[0] / max(totals[1], 1.0)})
            if model.stop_training:
                break
        logs = {"loss": totals[0] / max(totals[1], 1.0)}
        if test_step is not None:
            totals = np.zeros(2)
            for batch in dist_val:
                totals += test_step(batch).numpy()
            logs["val_loss"] = totals[0] / max(totals[1], 1.0)
        callback_list.on_epoch_end(epoch, logs)
        # a callback deciding from anything but the (identical) logs stops all workers alike
        stop = replica_sum([float(bool(model.stop_training))])[0]
        model.stop_training = bool(stop > 0)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=logs)
    return history
