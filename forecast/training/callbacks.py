"""Callbacks used by ``forecast.training.fit``."""

from __future__ import annotations

import math

import keras


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where it happened.

    Like ``keras.callbacks.TerminateOnNaN`` (graceful ``stop_training``), but it records the
    epoch (1-based) and batch so that ``fit`` can raise a ``ModelError`` saying where the loss
    diverged.

    Attributes:
        diverged: whether a non-finite loss was seen.
        epoch: the 1-based epoch where it was seen (None until then).
        batch: the batch within that epoch (None for an epoch-level value such as val_loss).
        key, value: which logged value was not finite, and its value.
    """

    def __init__(self):
        super().__init__()
        self.diverged = False
        self.epoch = None
        self.batch = None
        self.key = None
        self.value = None
        self._current_epoch = 0

    def on_train_begin(self, logs=None):
        self.diverged = False
        self.epoch = self.batch = self.key = self.value = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def _check(self, logs, keys, batch):
        if self.diverged:
            return
        for key in keys:
            value = (logs or {}).get(key)
            if value is None:
                continue
            value = float(value)
            if not math.isfinite(value):
                self.diverged = True
                self.epoch = self._current_epoch + 1
                self.batch = batch
                self.key = key
                self.value = value
                self.model.stop_training = True
                return

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, ("loss",), batch)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch
        self._check(logs, ("loss", "val_loss"), None)


class EpochProgress(keras.callbacks.Callback):
    """Reports each finished epoch to a progress task (``forecast.progress``): its number out of
    the epochs asked for, ``loss`` and ``val_loss``, elapsed time and ETA. ``fit`` uses it in
    place of Keras's own per-epoch printing while a progress display is active.

    Args:
        task: a ``forecast.progress.Task`` counting epochs (total: the epochs asked for).
        keys: the logged values shown, when logged.

    Example:
        >>> with progress.task("epoch", total=20) as task:
        ...     model.fit(..., epochs=20, verbose=0, callbacks=[EpochProgress(task)])
        # epoch 3/20 loss 0.41 val_loss 0.39 (12 s, ~60 s left)
    """

    def __init__(self, task, keys: tuple[str, ...] = ("loss", "val_loss")):
        super().__init__()
        self.task = task
        self.keys = tuple(keys)
        self._started = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:  # a resumed run starts after the epochs done before
            self._started = True
            if epoch:
                self.task.skip_to(int(epoch))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {}
        for key in self.keys:
            if key in logs and logs[key] is not None:
                try:
                    shown[key] = float(logs[key])
                except (TypeError, ValueError):
                    continue
        self.task.advance(**shown)
