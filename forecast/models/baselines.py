"""Baseline forecasters with the predict interface of a Keras model, saved as JSON.

Every model we train is compared with these. They read only the targets' history: the first
``spec.n_targets`` channels of the lookback input that ``forecast.data.make_dataset`` yields
(covariates and known-future inputs are ignored).

* ``NaiveForecaster``: repeats the last observed value over the horizon.
* ``SeasonalNaiveForecaster``: repeats the last observed season (24 steps for hourly data).
* ``LinearForecaster``: NLinear-style ridge regression on the lookback. The window's last value is
  subtracted per channel before the regression and added back to its output, so the model
  learns shapes rather than levels. One multi-output ``sklearn.linear_model.Ridge`` predicts all
  horizon steps at once (the same closed form as one Ridge per step). With
  ``per_channel=False`` (the default, NLinear's "shared" mode) one set of weights serves every
  target channel (windows of all channels are stacked); with ``per_channel=True`` each target
  channel gets its own Ridge.

Fitting materialises the training windows of the targets, ``(windows, lookback, n_targets)``, for
the Ridge solver; this is the one place that does (the neural models stream windows).

Example:
    >>> base = make_baseline("linear", alpha=1.0).fit(train_ds, spec)
    >>> base.predict(test_inputs).shape        # (batch, horizon, n_targets)
    (32, 24, 1)
    >>> same = baseline_from_json(base.to_json())
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import tensorflow as tf
from sklearn.linear_model import Ridge

from forecast.data.frequency import season_for_freq
from forecast.errors import ConfigError, DataError, ModelError
from forecast.options import BASELINES

# -- turning what make_dataset yields into numpy ----------------------------------------------


def _past(inputs) -> np.ndarray:
    """The lookback input of a batch: drops the known-future part of a (past, future) pair."""
    if isinstance(inputs, tuple | list):
        if not inputs:
            raise DataError("received an empty tuple of inputs.")
        inputs = inputs[0]
    array = np.asarray(inputs, dtype=np.float64)
    if array.ndim != 3:
        raise DataError(
            "baseline inputs must be (batch, lookback, features) or a (past, future) pair as "
            f"make_dataset yields. Received an array of shape {array.shape}."
        )
    return array


def _collect(data, *, targets: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(past inputs, targets) from a dataset of ``(inputs, targets)`` or an ``(x, y)`` pair.

    With ``targets=False``, ``data`` is inputs alone: an array, a (past, future) pair, or a
    dataset (of ``(inputs, targets)`` batches as make_dataset yields, or of inputs arrays).
    """
    if isinstance(data, tf.data.Dataset):
        xs, ys = [], []
        for element in data.as_numpy_iterator():
            if isinstance(element, tuple) and len(element) == 2:
                x, y = element
                ys.append(np.asarray(y, dtype=np.float64))
            else:
                x = element
            xs.append(_past(x))
        if not xs:
            raise DataError("the dataset yields no windows; it needs at least one batch.")
        return np.concatenate(xs), (np.concatenate(ys) if ys else None)
    if not targets:
        return _past(data), None
    if not (isinstance(data, tuple | list) and len(data) == 2):
        raise DataError(
            "fit takes a dataset from make_dataset or an (x, y) pair of arrays. "
            f"Received: {type(data).__name__}."
        )
    x, y = data
    return _past(x), np.asarray(y, dtype=np.float64)


# -- the baselines ----------------------------------------------------------------------------


class BaselineForecaster:
    """Common interface: ``fit(data, spec)``, ``predict(inputs)``, ``to_json``/``from_json``.

    Capability flags follow NeuralForecast's habit of class constants.
    """

    name = "baseline"
    NEEDS_FIT = False  # the naive baselines only record the spec's shape

    def __init__(self):
        self.lookback: int | None = None
        self.horizon: int | None = None
        self.n_targets: int | None = None
        self.targets: list[str] = []

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, data, spec, **kwargs) -> BaselineForecaster:
        """Fits the baseline on training windows.

        Args:
            data: a ``tf.data.Dataset`` from ``make_dataset`` (``(inputs, targets)`` batches) or
                an ``(x, y)`` pair of arrays, ``x`` being (windows, lookback, features) or a
                (past, future) tuple and ``y`` (windows, horizon, n_targets).
            spec: the ``WindowSpec`` the windows were made with.

        Returns:
            self.

        Raises:
            DataError: the windows do not match ``spec``.
        """
        self._record_spec(spec)
        if self.NEEDS_FIT:
            x, y = _collect(data)
            if y is None:
                raise DataError(f"{self.name} baseline: fit needs targets; got inputs only.")
            self._check_inputs(x)
            if y.shape[1:] != (self.horizon, self.n_targets):
                raise DataError(
                    f"{self.name} baseline: targets must be (windows, {self.horizon}, "
                    f"{self.n_targets}). Received: {y.shape}."
                )
            self._fit_arrays(x[:, :, : self.n_targets], y)
        return self

    def _record_spec(self, spec) -> None:
        self.lookback = int(spec.lookback)
        self.horizon = int(spec.horizon)
        self.n_targets = int(spec.n_targets)
        self.targets = list(spec.targets)

    def _fit_arrays(self, history: np.ndarray, targets: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- predicting -------------------------------------------------------------------------

    def predict(self, inputs, verbose: int = 0, **kwargs) -> np.ndarray:
        """Forecasts for a batch of windows (Keras ``Model.predict`` style).

        Args:
            inputs: what ``make_dataset`` yields as inputs — (batch, lookback, features) or a
                (past, future) tuple — or the dataset itself (its targets are ignored).
            verbose: accepted for Keras compatibility; ignored.

        Returns:
            float64 array (batch, horizon, n_targets).

        Raises:
            ModelError: the baseline is not fitted.
            DataError: inputs of the wrong shape.
        """
        if self.horizon is None:
            raise ModelError(f"the {self.name} baseline is not fitted: call fit(data, spec) first.")
        x = _collect(inputs, targets=False)[0]
        self._check_inputs(x)
        return self._predict_history(x[:, :, : self.n_targets])

    __call__ = predict

    def _check_inputs(self, x: np.ndarray) -> None:
        if x.shape[1] < self._min_lookback() or x.shape[2] < self.n_targets:
            raise DataError(
                f"{self.name} baseline: inputs must be (batch, >= {self._min_lookback()}, "
                f">= {self.n_targets}) with the targets first. Received: {x.shape}."
            )

    def _min_lookback(self) -> int:
        return 1

    def _predict_history(self, history: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- saving -----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        pass

    def to_json(self) -> str:
        """The baseline (settings and fitted values, as plain lists) as a JSON string."""
        return json.dumps(
            {
                "name": self.name,
                "config": self.get_config(),
                "shape": {
                    "lookback": self.lookback,
                    "horizon": self.horizon,
                    "n_targets": self.n_targets,
                    "targets": self.targets,
                },
                "state": self._state(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BaselineForecaster:
        """Rebuilds a baseline saved with ``to_json`` (any kind; see ``baseline_from_json``)."""
        return baseline_from_json(text)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class NaiveForecaster(BaselineForecaster):
    """Repeats the last observed value of each target over the horizon.

    Example:
        >>> NaiveForecaster().fit(ds, spec).predict(x)[0, :, 0]    # x[0, -1, 0] repeated
    """

    name = "naive"

    def _predict_history(self, history):
        last = history[:, -1:, :]  # [B, 1, T]
        return np.repeat(last, self.horizon, axis=1)  # [B, H, T]


class SeasonalNaiveForecaster(BaselineForecaster):
    """Repeats the last observed season: step ``h`` is the value one season before it.

    Args:
        season: the period in steps; ``None`` derives it from ``freq`` (hourly 24, daily 7,
            weekly 52, monthly 12, see ``season_for_freq``).
        freq: the data's frequency (``describe(frame).freq``), used when ``season`` is None; may
            also be given to ``fit``.

    Raises:
        ConfigError: a non-positive season, no way to know the season, or a lookback shorter
            than the season (at ``fit``).
    """

    name = "seasonal_naive"

    def __init__(self, season: int | None = None, freq: str | None = None):
        super().__init__()
        if season is not None and (
            isinstance(season, bool) or not isinstance(season, int | np.integer) or season < 1
        ):
            raise ConfigError(f"`season` must be a positive integer. Received: season={season!r}.")
        self.season = int(season) if season is not None else None
        self.freq = str(freq) if freq is not None else None

    def fit(self, data, spec, *, freq: str | None = None, **kwargs):
        """See ``BaselineForecaster.fit``; ``freq`` gives the season when it was not set."""
        if self.season is None:
            freq = freq if freq is not None else self.freq
            if freq is None:
                raise ConfigError(
                    "seasonal_naive baseline: the season is unknown. Give season= (e.g. 24 for "
                    "hourly data) or the data's frequency with freq=."
                )
            self.season = season_for_freq(freq)
            self.freq = str(freq)
        if spec.lookback < self.season:
            raise ConfigError(
                f"seasonal_naive baseline: lookback {spec.lookback} is shorter than the season "
                f"{self.season}; it needs lookback >= season. Use lookback={self.season} or more, "
                "or a smaller season."
            )
        return super().fit(data, spec)

    def _min_lookback(self):
        return self.season or 1

    def _predict_history(self, history):
        lookback = history.shape[1]
        steps = lookback - self.season + np.arange(self.horizon) % self.season  # [H]
        return history[:, steps, :]  # [B, L, T] -> [B, H, T]

    def get_config(self):
        return {"season": self.season, "freq": self.freq}


class LinearForecaster(BaselineForecaster):
    """NLinear-style ridge regression from the lookback to the horizon.

    Per channel ``c``: ``y[h] = last + intercept[h] + sum_l coef[h, l] * (x[l] - last)`` with
    ``last = x[L-1]``, fitted by ``sklearn.linear_model.Ridge(alpha)`` on all training windows.

    Args:
        alpha: the ridge penalty (>= 0).
        per_channel: ``False`` (default): one set of weights shared by all target channels
            (windows of every channel are stacked, NLinear's default); ``True``: one Ridge per
            target channel.

    Raises:
        ConfigError: a negative ``alpha``.
    """

    name = "linear"
    NEEDS_FIT = True

    def __init__(self, alpha: float = 1.0, per_channel: bool = False):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or alpha < 0:
            raise ConfigError(f"`alpha` must be a number >= 0. Received: alpha={alpha!r}.")
        self.alpha = float(alpha)
        self.per_channel = bool(per_channel)
        self.coef: np.ndarray | None = None  # [C, H, L], C = n_targets or 1 when shared
        self.intercept: np.ndarray | None = None  # [C, H]

    def _fit_arrays(self, history, targets):
        last = history[:, -1:, :]  # [N, 1, T]
        x_rel = history - last  # [N, L, T]
        y_rel = targets - last  # [N, H, T]
        groups = range(self.n_targets) if self.per_channel else [None]
        coefs, intercepts = [], []
        for channel in groups:
            if channel is None:  # stack channels: [N, L, T] -> [N*T, L]
                xs = np.moveaxis(x_rel, 2, 1).reshape(-1, x_rel.shape[1])
                ys = np.moveaxis(y_rel, 2, 1).reshape(-1, y_rel.shape[1])
            else:
                xs, ys = x_rel[:, :, channel], y_rel[:, :, channel]  # [N, L], [N, H]
            ridge = Ridge(alpha=self.alpha, fit_intercept=True).fit(xs, ys)
            coefs.append(np.atleast_2d(ridge.coef_))  # [H, L]
            intercepts.append(np.atleast_1d(ridge.intercept_))  # [H]
        self.coef = np.stack(coefs)
        self.intercept = np.stack(intercepts)

    def _predict_history(self, history):
        if self.coef is None:
            raise ModelError("the linear baseline is not fitted: call fit(data, spec) first.")
        if history.shape[1] != self.coef.shape[2]:
            raise DataError(
                f"linear baseline: it was fitted on a lookback of {self.coef.shape[2]}; "
                f"received inputs of lookback {history.shape[1]}."
            )
        last = history[:, -1:, :]  # [B, 1, T]
        x_rel = history - last  # [B, L, T]
        coef = self.coef if self.per_channel else np.repeat(self.coef, self.n_targets, axis=0)
        intercept = (
            self.intercept if self.per_channel else np.repeat(self.intercept, self.n_targets, 0)
        )
        out = np.einsum("blt,thl->bht", x_rel, coef)  # [B, L, T] x [T, H, L] -> [B, H, T]
        return out + intercept.T[None] + last

    def get_config(self):
        return {"alpha": self.alpha, "per_channel": self.per_channel}

    def _state(self):
        if self.coef is None:
            return {}
        return {"coef": self.coef.tolist(), "intercept": self.intercept.tolist()}

    def _set_state(self, state):
        if state:
            self.coef = np.asarray(state["coef"], dtype=np.float64)
            self.intercept = np.asarray(state["intercept"], dtype=np.float64)


_CLASSES = {
    "naive": NaiveForecaster,
    "seasonal_naive": SeasonalNaiveForecaster,
    "linear": LinearForecaster,
}


def make_baseline(name: str, **kwargs) -> BaselineForecaster:
    """A baseline by name.

    Args:
        name: one of ``BASELINES``: ``"naive"``, ``"seasonal_naive"``, ``"linear"``.
        **kwargs: its constructor arguments (``season``/``freq`` for seasonal naive,
            ``alpha``/``per_channel`` for linear).

    Raises:
        ConfigError: an unknown name or argument.

    Example:
        >>> make_baseline("seasonal_naive", season=24)
        SeasonalNaiveForecaster(season=24, freq=None)
    """
    if name not in _CLASSES:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}.")
    try:
        return _CLASSES[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"baseline {name!r}: {exc}") from None


def baseline_from_json(text: str) -> BaselineForecaster:
    """Rebuilds any baseline from its ``to_json`` output.

    Raises:
        ConfigError: the text is not a saved baseline.
    """
    try:
        payload = json.loads(text)
        model = make_baseline(payload["name"], **payload["config"])
        shape = payload["shape"]
        model.lookback, model.horizon = shape["lookback"], shape["horizon"]
        model.n_targets, model.targets = shape["n_targets"], list(shape["targets"])
        model._set_state(payload.get("state") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a saved baseline (JSON from to_json): {exc}") from None
    return model
