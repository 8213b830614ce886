"""``fit()``: compiles and trains a Keras model with the callbacks every run needs.

Adam with an optional gradient ``clipnorm``; the loss and learning-rate schedule from
``TrainConfig``; EarlyStopping (best weights restored), ReduceLROnPlateau or CosineDecay,
ModelCheckpoint (best ``.keras``) and BackupAndRestore (resume a killed run), and a divergence
guard that turns a NaN/inf loss into a ``ModelError``, as it does a finite loss that ends more
than ``DIVERGENCE_FACTOR`` times above forecasts that learn nothing (``reference_losses``).
Each epoch is reported to the current ``forecast.progress`` display (``EpochProgress``) in place
of Keras's own lines when one is active; with none (a library user's default) Keras prints as
``verbose`` says, and ``verbose=0`` is silent either way.

Distributed training: pass a ``tf.distribute`` strategy (``make_strategy(config.strategy)``).
The model must already have been *built* under ``strategy.scope()`` by the caller (its variables
are created there); ``fit`` creates the optimizer and compiles the model in the same scope.
``MirroredStrategy`` trains through ``Model.fit``; ``MultiWorkerMirroredStrategy`` through
``forecast.training.loop`` (Keras's ``Model.fit`` fails under it, keras-team/keras#20585), and
only its chief writes to ``checkpoint_dir``: the other workers restore the chief's backup and
write theirs into a temporary folder, deleted at the end.

Example:
    >>> config = TrainConfig(epochs=50, learning_rate=1e-3, patience=5, checkpoint_dir="runs/a")
    >>> result = fit(model, train_ds, val_ds, config)
    >>> result.best_epoch, result.stopped_early, result.history["val_loss"][-1]
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf
from pydantic import ValidationError

from forecast.errors import ConfigError, ModelError
from forecast.progress import resolve as resolve_progress
from forecast.training.callbacks import DivergenceGuard, EpochProgress
from forecast.training.config import TrainConfig
from forecast.training.distributed import ClusterRole, is_multi_worker, strategy_name, worker_role
from forecast.training.loop import train_loop
from forecast.training.losses import pinball_loss

logger = logging.getLogger("forecast.training")

BEST_MODEL_FILE = "best.keras"
# lr_schedule="decay": epochs at the initial rate, then the factor per epoch (LTSF "type3").
DECAY_KEPT = 4
DECAY_FACTOR = 0.9
BACKUP_DIR = "backup"

#: training fails when the loss of the weights it keeps is more than this many times the loss
#: of every forecast that learns nothing (naive: the last value; the lookback mean; the training
#: mean; ``reference_losses``) on the same scaled windows: a finite but diverged run (too high
#: a learning rate), not an undertrained one, which stays near one of them
DIVERGENCE_FACTOR = 10.0


@dataclass
class FitResult:
    """What a call to ``fit`` did.

    Attributes:
        history: every logged value per epoch run by this call (``loss``, ``val_loss``,
            ``learning_rate``, ...), as lists of floats.
        epochs_run: epochs run by this call (fewer than ``config.epochs`` when stopped early or,
            after a resume, when earlier epochs had already run).
        stopped_early: whether EarlyStopping ended the run.
        best_epoch: the 1-based epoch with the best monitored value (None if none was logged);
            the model holds that epoch's weights when early stopping is on.
        best_value: that value.
        monitor: ``"val_loss"`` with validation data, else ``"loss"``.
        initial_epoch: epochs completed before this call (> 0 when resumed from a backup).
        epochs: the 1-based numbers of the epochs run by this call.
        checkpoint_path: the best model's ``.keras`` file (None without ``checkpoint_dir``, and
            on the workers of a multi-worker run other than the chief).
        strategy: ``"default"``, ``"mirrored"`` or ``"multi_worker"`` (the strategy trained under).
        replicas: the replicas that trained in sync (1 without a strategy).
        workers: the processes that trained together (1 but for ``multi_worker``).
    """

    history: dict[str, list[float]]
    epochs_run: int
    stopped_early: bool
    best_epoch: int | None
    best_value: float | None
    monitor: str
    initial_epoch: int = 0
    epochs: list[int] = field(default_factory=list)
    checkpoint_path: Path | None = None
    strategy: str = "default"
    replicas: int = 1
    workers: int = 1

    @property
    def resumed(self) -> bool:
        """True when this call continued a run interrupted earlier."""
        return self.initial_epoch > 0


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and TensorFlow; optionally makes TensorFlow ops deterministic.

    Args:
        seed: the seed.
        deterministic: also ``tf.config.experimental.enable_op_determinism()`` (process-wide).
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def as_config(config) -> TrainConfig:
    """A ``TrainConfig`` from a TrainConfig, a dict or None (defaults).

    Raises:
        ConfigError: unknown keys or invalid values, in one message.
    """
    if isinstance(config, TrainConfig):
        return config
    try:
        return TrainConfig(**(config or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid training settings: {problems}.") from None


def resolve_loss(config: TrainConfig):
    """The Keras loss for ``config.loss``.

    ``"pinball"`` is ``forecast.models.heads.pinball_loss(config.quantiles)`` (the quantile
    head's registered loss; see ``forecast.training.losses``).
    """
    if config.loss == "mse":
        return keras.losses.MeanSquaredError()
    if config.loss == "mae":
        return keras.losses.MeanAbsoluteError()
    if config.loss == "huber":
        return keras.losses.Huber(delta=config.huber_delta)
    return pinball_loss(config.quantiles)


def reference_losses(dataset, loss, n_targets: int, quantiles=None) -> dict[str, float]:
    """The losses of three forecasts that learn nothing, on every window of ``dataset``,
    averaged over windows as Keras averages a loss: ``"naive"`` (each target's last
    lookback value repeated over the horizon: the naive forecast), ``"lookback mean"`` (its
    mean over the lookback, repeated) and ``"training mean"`` (zero in scaled units).

    A trained network that has learnt little scores near one of them; one whose loss ends far
    above all three has diverged (``fit(..., reference_losses=...)``).

    Args:
        dataset: batches of ``(inputs, targets)`` (``make_dataset``); the targets are the first
            ``n_targets`` channels of the past input.
        loss: a Keras loss (``resolve_loss(config)``).
        n_targets: targets per step.
        quantiles: the quantile levels of a quantile model (each forecast is repeated on
            every level), or None.

    Returns:
        ``{name: mean loss}``; empty for a dataset without windows.
    """
    totals = {"naive": 0.0, "lookback mean": 0.0, "training mean": 0.0}
    count = 0
    for inputs, targets in dataset:
        past = inputs[0] if isinstance(inputs, (tuple, list)) else inputs  # [B, L, F]
        series = past[:, :, :n_targets]  # [B, L, T]
        steps = tf.shape(targets)[1]
        forecasts = {
            "naive": tf.repeat(series[:, -1:], steps, axis=1),  # [B, H, T]
            "lookback mean": tf.repeat(tf.reduce_mean(series, axis=1, keepdims=True), steps,
                                       axis=1),  # [B, H, T]
            "training mean": tf.zeros_like(targets),  # [B, H, T]
        }
        batch = int(tf.shape(targets)[0])
        for name, forecast in forecasts.items():
            if quantiles:
                forecast = tf.repeat(forecast[..., None], len(quantiles), axis=-1)  # [B,H,T,Q]
            totals[name] += float(loss(targets, forecast)) * batch
        count += batch
    return {name: total / count for name, total in totals.items()} if count else {}


def _steps_per_epoch(dataset) -> int:
    steps = int(dataset.cardinality().numpy())
    if steps == tf.data.INFINITE_CARDINALITY:
        raise ConfigError(
            'lr_schedule="cosine" needs a finite training dataset (its length sets the decay); '
            "this one repeats forever. Use lr_schedule='plateau' or a finite dataset."
        )
    if steps == tf.data.UNKNOWN_CARDINALITY:
        steps = sum(1 for _ in dataset)
    return max(steps, 1)


def _callbacks(config: TrainConfig, monitor: str, role: ClusterRole, scratch: Path | None):
    callbacks = []
    checkpoint_path = None
    if config.checkpoint_dir is not None:
        shared = Path(config.checkpoint_dir)
        if role.is_chief:
            directory = shared
            directory.mkdir(parents=True, exist_ok=True)
        else:
            # The standard multi-worker pattern: every worker runs the same callbacks, but only
            # the chief writes where users look; this one restores the chief's backup (a shared
            # filesystem) and writes its own copies into a scratch folder deleted afterwards.
            directory = scratch
            if (shared / BACKUP_DIR).is_dir():
                shutil.copytree(shared / BACKUP_DIR, directory / BACKUP_DIR)
        # First, so that the backup of an epoch is written before any later callback can stop
        # the run at that epoch's end.
        # double_checkpoint: a kill while the weights are written leaves the previous epoch's
        # copy, from which the next run resumes instead of failing on a truncated file.
        callbacks.append(keras.callbacks.BackupAndRestore(str(directory / BACKUP_DIR),
                                                          double_checkpoint=True))
        checkpoint_path = directory / BEST_MODEL_FILE
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(checkpoint_path), monitor=monitor, save_best_only=True, verbose=0
            )
        )
        if not role.is_chief:
            checkpoint_path = None
    guard = DivergenceGuard()
    callbacks.append(guard)
    early = None
    if config.patience is not None:
        early = keras.callbacks.EarlyStopping(
            monitor=monitor,
            patience=config.patience,
            min_delta=config.min_delta,
            restore_best_weights=True,
        )
        callbacks.append(early)
    if config.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                factor=0.5,
                patience=max(1, (config.patience or 4) // 2),
                min_delta=config.min_delta,
                verbose=0,
            )
        )
    elif config.lr_schedule == "decay":
        callbacks.append(keras.callbacks.LearningRateScheduler(
            functools.partial(decayed_rate, config.learning_rate)))
    return callbacks, guard, early, checkpoint_path


def decayed_rate(initial: float, epoch: int, _current: float | None = None) -> float:
    """The learning rate of ``lr_schedule="decay"`` at an epoch.

    The step decay of the LTSF benchmark scripts (``lradj="type3"`` in SegRNN's and PatchTST's
    code): the initial rate for the first ``DECAY_KEPT`` epochs, then ``DECAY_FACTOR`` times
    the previous epoch's (type3 sets epoch k's rate to ``0.9 ** (k - 3)`` from k = 3 on,
    counting from 0, so epochs 0-3 run at the initial rate).

    Args:
        initial: the configured ``learning_rate``.
        epoch: the epoch about to run, counted from 0.
        _current: the optimizer's present rate (Keras passes it; unused).

    Returns:
        The rate for that epoch.
    """
    return initial * DECAY_FACTOR ** max(0, epoch - DECAY_KEPT + 1)


def fit(model: keras.Model, train_ds, val_ds=None, config=None, *, callbacks=None,
        strategy=None, reference_losses: dict[str, float] | None = None,
        progress=None) -> FitResult:
    """Compiles ``model`` (Adam) and trains it.

    Args:
        model: a built Keras model taking the inputs of ``train_ds``.
        train_ds: a ``tf.data.Dataset`` of ``(inputs, targets)`` (``make_dataset``, shuffled).
        val_ds: the validation dataset, or None (then ``loss`` is monitored).
        config: a ``TrainConfig`` or a dict of its fields (None: defaults).
        callbacks: extra Keras callbacks, run after ours.
        strategy: a ``tf.distribute.Strategy`` (``make_strategy(config.strategy)``); build the
            model in ``strategy.scope()`` first. Required when ``config.strategy`` is not
            ``"default"``.
        reference_losses: the losses of forecasts that learn nothing on the monitored data
            (``reference_losses`` of ``val_ds``, else of ``train_ds``); training fails when
            the kept weights' loss is above ``DIVERGENCE_FACTOR`` times the largest. None: no
            such check.
        progress: a ``forecast.progress`` display (None: ``forecast.progress.current()``,
            silent unless set). While one is active and ``config.verbose`` is not 0, each
            epoch is reported to it (epoch k/n, loss, val_loss, elapsed, ETA) instead of Keras
            printing its own lines; ``verbose=0`` stays silent.

    Returns:
        A ``FitResult``.

    Raises:
        ConfigError: invalid settings; ``config.strategy`` set but no strategy given, or a model
            built outside the strategy's scope; multi-worker resumes that disagree.
        ModelError: the loss became NaN/inf or ended far above ``reference_losses`` (says at
            which epoch and what to try), or Keras rejected the model/data (e.g. shapes that do
            not match).

    Example:
        >>> result = fit(model, train_ds, val_ds, {"epochs": 30, "verbose": 0})
        >>> result.epochs_run, result.best_epoch
        (30, 27)
    """
    config = as_config(config)
    if not isinstance(model, keras.Model):
        raise ModelError(f"fit needs a keras.Model. Received: {type(model).__name__}.")
    if config.seed is not None:
        set_seed(config.seed, config.deterministic)
    elif config.deterministic:
        tf.config.experimental.enable_op_determinism()
    _check_strategy(model, config, strategy)
    role = worker_role(strategy)
    name, replicas = strategy_name(strategy), _replicas(strategy)
    logger.info("training under the %s strategy: %d replica(s) on %d worker(s)%s", name,
                replicas, role.workers, "" if role.is_chief else
                f" (this is {role.task_type} {role.task_index}; the chief writes checkpoints)")
    monitor = "val_loss" if val_ds is not None else "loss"
    scratch = None
    if config.checkpoint_dir is not None and not role.is_chief:
        scratch = Path(tempfile.mkdtemp(prefix=f"forecast-{role.task_type}{role.task_index}-"))
    try:
        history, guard, early, checkpoint_path = _train(
            model, train_ds, val_ds, config, callbacks, strategy, role, monitor, scratch,
            resolve_progress(progress))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result = _result(history, guard, early, checkpoint_path, config, monitor, name, replicas,
                     role)
    _check_against_references(result, early is not None, config, reference_losses)
    return result


def _check_against_references(result: FitResult, restored_best: bool, config: TrainConfig,
                               references: dict[str, float] | None) -> None:
    """Raises when the kept weights' loss is more than ``DIVERGENCE_FACTOR`` times the largest
    loss of ``references``: finite, but diverged (NaN and inf are the DivergenceGuard's)."""
    finite = {k: v for k, v in (references or {}).items() if math.isfinite(v)}
    if not finite or max(finite.values()) <= 1e-12:  # a constant series: nothing to compare
        return
    values = result.history.get(result.monitor, [])
    if restored_best and result.best_epoch is not None:  # EarlyStopping restored the best
        epoch, value = result.best_epoch, result.best_value
    elif values and result.epochs:  # the last epoch's weights are kept
        epoch, value = result.epochs[-1], values[-1]
    else:
        return
    limit = DIVERGENCE_FACTOR * max(finite.values())
    if value <= limit:
        return
    part = "validation" if result.monitor == "val_loss" else "training"
    shown = ", ".join(f"{name} {loss:.4g}" for name, loss in finite.items())
    raise ModelError(
        f"training diverged: the {part} loss ({config.loss}) at epoch {epoch} (the weights "
        f"kept) is {value:.4g}, more than {DIVERGENCE_FACTOR:g}x the loss of forecasts that "
        f"learn nothing on the same scaled windows ({shown}). Lower the learning rate (now "
        f"{config.learning_rate:g}; --learning-rate, YAML `train.learning_rate`), e.g. to "
        "0.001, or clip gradients (YAML `train.clipnorm: 1.0`)."
    )


def _replicas(strategy) -> int:
    return int(strategy.num_replicas_in_sync) if strategy is not None else 1


def _check_strategy(model, config: TrainConfig, strategy) -> None:
    if strategy is None:
        if config.strategy != "default":
            raise ConfigError(
                f"train.strategy={config.strategy!r} needs its strategy passed to fit: "
                f"strategy = forecast.training.make_strategy({config.strategy!r}); build the "
                "model inside `with strategy.scope():`, then fit(..., strategy=strategy) (the "
                "Forecaster does all of this)."
            )
        return
    if model.distribute_strategy is not strategy:  # Keras notes the strategy of the model's scope
        raise ConfigError(
            f"the model was built outside the {strategy_name(strategy)} strategy's scope: build "
            "it inside `with strategy.scope():` (its variables must be mirrored) and pass the "
            "same strategy to fit."
        )


def _train(model, train_ds, val_ds, config, extra_callbacks, strategy, role, monitor, scratch,
           display):
    own, guard, early, checkpoint_path = _callbacks(config, monitor, role, scratch)
    loss = resolve_loss(config)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        if config.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                config.learning_rate, decay_steps=config.epochs * _steps_per_epoch(train_ds)
            )
        else:
            learning_rate = config.learning_rate
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=config.clipnorm)
        model.compile(optimizer=optimizer, loss=loss)

    callbacks = own + list(extra_callbacks or [])
    # a progress display replaces Keras's per-epoch printing; verbose=0 stays silent
    shown = display.active and config.verbose != 0
    verbose = 0 if shown else config.verbose
    epochs_task = (display.task("epoch", total=config.epochs) if shown and role.is_chief
                   else contextlib.nullcontext())
    with epochs_task as task:
        if task is not None:
            callbacks.append(EpochProgress(task))
        try:
            if is_multi_worker(strategy):
                history = train_loop(
                    model, train_ds, val_ds, loss=loss, strategy=strategy, epochs=config.epochs,
                    callbacks=callbacks, verbose=verbose, show_progress=role.is_chief,
                )
            else:
                history = model.fit(
                    train_ds,
                    validation_data=val_ds,
                    epochs=config.epochs,
                    callbacks=callbacks,
                    verbose=verbose,
                    shuffle=False,  # tf.data datasets are shuffled by make_dataset(shuffle=True)
                )
        except (ValueError, tf.errors.InvalidArgumentError) as exc:
            raise ModelError(
                f"training failed: {exc}. Check that the model's input and output shapes match "
                "the dataset's (inputs (batch, lookback, features), targets (batch, horizon, "
                "targets))."
            ) from exc
    return history, guard, early, checkpoint_path


def _result(history, guard, early, checkpoint_path, config, monitor, name, replicas,
            role) -> FitResult:
    if guard.diverged:
        where = f"epoch {guard.epoch}"
        if guard.batch is not None:
            where += f", batch {guard.batch}"
        raise ModelError(
            f"training diverged: {guard.key} became {guard.value} at {where}. Try a lower "
            f"learning_rate (now {config.learning_rate:g}), check that the inputs are scaled "
            "(fit a Scaler on the training part), or clip gradients with clipnorm=1.0."
        )

    logged = {k: [float(v) for v in values] for k, values in history.history.items()}
    epochs = [int(e) + 1 for e in history.epoch]
    best_epoch = best_value = None
    values = logged.get(monitor, [])
    finite = [(v, e) for v, e in zip(values, epochs, strict=False) if math.isfinite(v)]
    if finite:
        best_value, best_epoch = min(finite)
    return FitResult(
        history=logged,
        epochs_run=len(epochs),
        stopped_early=bool(early is not None and early.stopped_epoch > 0),
        best_epoch=best_epoch,
        best_value=best_value,
        monitor=monitor,
        initial_epoch=(epochs[0] - 1) if epochs else 0,
        epochs=epochs,
        checkpoint_path=checkpoint_path,
        strategy=name,
        replicas=replicas,
        workers=role.workers,
    )
