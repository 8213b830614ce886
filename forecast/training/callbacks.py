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
