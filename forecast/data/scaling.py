"""Per-column scalers fitted on the training part only, saved as JSON (never pickle).

scikit-learn fits the statistics; the fitted centre and scale of each column are then kept as
plain floats, so a scaler round-trips through JSON and applies without scikit-learn objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from forecast.data.dataset import carry
from forecast.errors import ConfigError, DataError

_KINDS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
_GLOBAL = "__all__"


def _center_scale(kind: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fits one scikit-learn scaler and returns (center, scale) so that z = (x - center) / scale."""
    fitted = _KINDS[kind]().fit(values)
    if kind == "standard":
        return fitted.mean_, fitted.scale_
    if kind == "minmax":
        # MinMaxScaler: z = x * scale_ + min_  ==  (x - (-min_/scale_)) / (1/scale_)
        return -fitted.min_ / fitted.scale_, 1.0 / fitted.scale_
    return fitted.center_, fitted.scale_


class Scaler:
    """Scales each column independently: standard, min-max or robust (median / IQR).

    Constant columns get a scale of 1 (no division by zero). In long format (a frame indexed
    by (id, time)), each series gets its own statistics.

    Args:
        kind: ``"standard"``, ``"minmax"`` or ``"robust"``.
        columns: the columns to scale; ``None`` scales every column of the frame given to ``fit``.

    Raises:
        ConfigError: unknown ``kind``.

    Example:
        >>> scaler = Scaler("standard").fit(parts.train)
        >>> train_z = scaler.transform(parts.train)
        >>> Scaler.from_json(scaler.to_json()).inverse_transform(train_z)  # original units
    """

    def __init__(self, kind: str = "standard", columns: Sequence[str] | None = None):
        if kind not in _KINDS:
            raise ConfigError(
                f"scaler `kind` must be one of {sorted(_KINDS)}. Received: kind={kind!r}."
            )
        self.kind = kind
        self.columns = list(columns) if columns is not None else None
        self.params: dict[str, dict[str, list[float]]] = {}

    @property
    def fitted(self) -> bool:
        return bool(self.params)

    def fit(self, frame: pd.DataFrame) -> Scaler:
        """Fits the statistics on ``frame`` (the training part only).

        Args:
            frame: training rows, columns including ``self.columns``.

        Returns:
            self.

        Raises:
            DataError: a column is missing, the frame is empty or holds NaN/inf.
        """
        if self.columns is None:
            self.columns = [str(c) for c in frame.columns]
        self._check_columns(frame)
        if len(frame) == 0:
            raise DataError("cannot fit a scaler on an empty training part.")
        self.params = {}
        for key, group in self._groups(frame):
            values = group[self.columns].to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                raise DataError(
                    f"cannot fit a scaler: the training part{self._label(key)} holds NaN or inf. "
                    "Load the data with load_csv, which fills or rejects them."
                )
            center, scale = _center_scale(self.kind, values)
            scale = np.where(np.abs(scale) < 1e-12, 1.0, scale)
            self.params[key] = {"center": center.tolist(), "scale": scale.tolist()}
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Returns a copy of ``frame`` with the scaler's columns scaled (others untouched)."""
        return self._apply(frame, inverse=False)

    def inverse_transform(self, data, columns: Sequence[str] | None = None, series=None):
        """Maps scaled values back to original units.

        Args:
            data: a DataFrame (columns named) or an array whose last axis is ``columns``.
            columns: for arrays, the column names along the last axis (default: all columns).
            series: for arrays in long format, the series id whose statistics apply.

        Returns:
            The same kind of object as ``data``, in original units.
        """
        if isinstance(data, pd.DataFrame):
            return self._apply(data, inverse=True)
        columns = list(columns) if columns is not None else list(self.columns)
        center, scale = self._vectors(columns, series)
        return np.asarray(data) * scale + center

    def transform_array(self, data, columns: Sequence[str], series=None) -> np.ndarray:
        """Scales an array whose last axis holds ``columns``."""
        center, scale = self._vectors(list(columns), series)
        return (np.asarray(data, dtype=np.float64) - center) / scale

    def scales(self, columns: Sequence[str], series=None) -> np.ndarray:
        """The scale of each of ``columns`` (one unit of scaled values in original units).

        Args:
            columns: the column names.
            series: in long format, the series id whose statistics apply.

        Returns:
            An array (len(columns),).

        Raises:
            DataError: a column or series the scaler was not fitted on.
        """
        return np.asarray(self._vectors(list(columns), series)[1], dtype=np.float64)

    def to_json(self) -> str:
        """The fitted scaler as a JSON string (no pickle)."""
        self._require_fitted()
        return json.dumps({"kind": self.kind, "columns": self.columns, "params": self.params})

    @classmethod
    def from_json(cls, text: str) -> Scaler:
        """Rebuilds a scaler from ``to_json`` output.

        Raises:
            ConfigError: the text is not a scaler's JSON.
        """
        try:
            payload = json.loads(text)
            scaler = cls(payload["kind"], payload["columns"])
            scaler.params = {
                str(k): {"center": list(v["center"]), "scale": list(v["scale"])}
                for k, v in payload["params"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a saved Scaler (JSON from Scaler.to_json): {exc}") from None
        return scaler

    # -- helpers ---------------------------------------------------------------------------

    def _require_fitted(self):
        if not self.fitted:
            raise ConfigError("the scaler is not fitted: call fit(train_frame) first.")

    def _check_columns(self, frame):
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"scaler columns {missing} are not in the frame; it has {list(frame.columns)}."
            )

    @staticmethod
    def _groups(frame):
        if isinstance(frame.index, pd.MultiIndex):
            for key, group in frame.groupby(level=0, sort=False):
                yield str(key), group
        else:
            yield _GLOBAL, frame

    @staticmethod
    def _label(key):
        return "" if key == _GLOBAL else f" of series {key!r}"

    def _vectors(self, columns, series=None):
        self._require_fitted()
        key = _GLOBAL if series is None else str(series)
        if key not in self.params:
            if len(self.params) == 1:
                key = next(iter(self.params))
            else:
                raise DataError(
                    f"the scaler has no statistics for series {series!r}; "
                    f"it knows {sorted(self.params)}."
                )
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise DataError(f"the scaler was not fitted on columns {unknown}.")
        positions = [self.columns.index(c) for c in columns]
        params = self.params[key]
        return (
            np.asarray(params["center"])[positions],
            np.asarray(params["scale"])[positions],
        )

    def _apply(self, frame, inverse):
        self._require_fitted()
        self._check_columns(frame)
        values = frame[self.columns].to_numpy(dtype=np.float64, copy=True)
        if isinstance(frame.index, pd.MultiIndex):
            positions = frame.groupby(level=0, sort=False).indices
        else:
            positions = {_GLOBAL: np.arange(len(frame))}
        for key, rows in positions.items():
            center, scale = self._vectors(self.columns, None if key == _GLOBAL else key)
            block = values[rows]
            values[rows] = block * scale + center if inverse else (block - center) / scale
        if not inverse:
            _check_float32(values, self.columns, frame)
        out = frame.copy()
        for j, column in enumerate(self.columns):
            out[column] = values[:, j].astype(frame[column].dtype, copy=False)
        return carry(frame, out)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32(values: np.ndarray, columns, frame) -> None:
    """Scaled values are fed to the model as float32: one beyond its range would become inf.

    Raises:
        DataError: naming the column, the timestamp and the scaled value.
    """
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) & ~np.isnan(values) | (np.abs(values) > _FLOAT32_MAX)
    if not bad.any():
        return
    row, column = (int(v[0]) for v in np.nonzero(bad))
    when = frame.index[row]
    raise DataError(
        f"column {columns[column]!r} at {when} scales to {values[row, column]:.6g}, beyond the "
        f"float32 range (magnitude at most {_FLOAT32_MAX:.3g}) the model computes in: the value "
        f"is far outside what the scaler saw in training. Check the value (a unit change, a "
        f"sentinel such as 1e30?) or retrain on data that covers it."
    )
