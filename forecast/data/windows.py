"""Sliding windows over a time-indexed frame, fed to Keras as a ``tf.data.Dataset``.

A window is only a start position. The series is kept once, as one ``(rows, columns)`` tensor;
each batch gathers its windows from it by index arithmetic, so memory does not grow with the
number of windows (never an array of shape ``(n_windows, lookback, features)``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import tensorflow as tf

from forecast.data.dataset import describe
from forecast.errors import ConfigError, DataError


class WindowFrames(NamedTuple):
    """One window as DataFrames with their timestamps, for looking at what a model sees."""

    inputs: pd.DataFrame  # lookback rows: targets, past covariates, future covariates' history
    future: pd.DataFrame | None  # horizon rows of known-future covariates, or None
    targets: pd.DataFrame  # horizon rows of the target columns


def _as_names(value, setting: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    names = tuple(value)
    if not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"`{setting}` must be column names. Received: {setting}={value!r}.")
    return names


@dataclass(frozen=True)
class WindowSpec:
    """What one training example looks like.

    Args:
        lookback: past rows the model reads.
        horizon: future rows it predicts.
        targets: columns to predict (also read as inputs over the lookback).
        past_covariates: columns known only up to the forecast origin (inputs over the lookback).
        future_covariates: columns known in advance (user-supplied ones such as prices or
            promotions, then the calendar features): read over the lookback with the inputs and
            over the horizon as a second input.
        stride: rows between the starts of consecutive windows.
        static_covariates: columns constant within each series (a global model's encoded
            static covariates and series id, ``forecast.models.static``): read once per window,
            from its first row, as the last input (B, S).
        static_sizes: per static column, its vocabulary size (0 for a number).
        static_dims: per static column, the size of its embedding (1 for a number).

    Raises:
        ConfigError: a non-positive size, no targets, or a column listed twice.

    Example:
        >>> spec = WindowSpec(lookback=96, horizon=24, targets=("OT",))
        >>> spec.input_columns, spec.min_rows
        (('OT',), 120)
    """

    lookback: int
    horizon: int
    targets: tuple[str, ...]
    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()
    stride: int = 1
    static_covariates: tuple[str, ...] = ()
    static_sizes: tuple[int, ...] = ()
    static_dims: tuple[int, ...] = ()

    def __post_init__(self):
        for name in ("lookback", "horizon", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(
                    f"`{name}` must be a positive integer. Received: {name}={value!r}."
                )
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "targets", _as_names(self.targets, "targets"))
        object.__setattr__(
            self, "past_covariates", _as_names(self.past_covariates, "past_covariates")
        )
        object.__setattr__(
            self, "future_covariates", _as_names(self.future_covariates, "future_covariates")
        )
        object.__setattr__(
            self, "static_covariates", _as_names(self.static_covariates, "static_covariates"))
        object.__setattr__(self, "static_sizes", tuple(int(v) for v in self.static_sizes))
        object.__setattr__(self, "static_dims", tuple(int(v) for v in self.static_dims))
        if not len(self.static_sizes) == len(self.static_dims) == len(self.static_covariates):
            raise ConfigError(
                "`static_sizes` and `static_dims` need one entry per static covariate. "
                f"Received: static_covariates={self.static_covariates}, static_sizes="
                f"{self.static_sizes}, static_dims={self.static_dims}.")
        if not self.targets:
            raise ConfigError("`targets` must name at least one column. Received: targets=().")
        columns = self.input_columns + self.static_covariates
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ConfigError(
                f"columns {repeated} are listed more than once among targets, past_covariates "
                "and future_covariates; list each column in one place."
            )

    # -- sizes -----------------------------------------------------------------------------

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Columns of the lookback input, in order: targets, past, future covariates."""
        return self.targets + self.past_covariates + self.future_covariates

    @property
    def n_inputs(self) -> int:
        return len(self.input_columns)

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    @property
    def n_future(self) -> int:
        return len(self.future_covariates)

    @property
    def n_static(self) -> int:
        """Static input columns (``static_covariates``)."""
        return len(self.static_covariates)

    @property
    def static_width(self) -> int:
        """Channels the embedded static inputs add to every lookback step."""
        return sum(self.static_dims)

    @property
    def min_rows(self) -> int:
        """Rows one window needs: ``lookback + horizon``."""
        return self.lookback + self.horizon

    def to_dict(self) -> dict:
        """Plain data for JSON (the served model keeps its spec this way)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> WindowSpec:
        """Inverse of ``to_dict``."""
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    # -- windows over a frame ---------------------------------------------------------------

    def check_frame(self, frame: pd.DataFrame) -> None:
        """Raises DataError unless ``frame`` has every input column, finite values and a window.

        Raises:
            DataError: a missing column, NaN/inf, or fewer rows than ``lookback + horizon``.
        """
        source = describe(frame).source
        missing = [c for c in self.input_columns + self.static_covariates
                   if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: columns {missing} are not in the data; it has {list(frame.columns)}. "
                "Check the target and covariate names (calendar features are added with "
                "forecast.data.add_calendar_features)."
            )
        for column in self.input_columns + self.static_covariates:
            values = frame[column].to_numpy()
            if values.dtype.kind not in "fiub":
                raise DataError(
                    f"{source}: column {column!r} is not numeric (dtype {values.dtype}); "
                    "load the data with load_csv, which converts or rejects text."
                )
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{source}: column {column!r} holds {values[row]} at {frame.index[row]} "
                    f"(row {row}); windows need finite values. Load the data with load_csv, "
                    "which fills gaps (--fill, YAML `data.fill`)."
                )
        for series, (begin, end) in self._segments(frame).items():
            if end - begin < self.min_rows:
                where = "" if series is None else f" series {series!r}"
                raise DataError(
                    f"{source}:{where} has {end - begin} rows, too few for one window: "
                    f"needs at least {self.min_rows} rows (lookback {self.lookback} + horizon "
                    f"{self.horizon}). Use more data or a shorter lookback/horizon."
                )

    def window_starts(self, frame: pd.DataFrame) -> np.ndarray:
        """Row positions where the windows of ``frame`` start (never across series).

        Returns:
            int64 array; window ``i`` reads rows ``[s, s + lookback)`` and predicts rows
            ``[s + lookback, s + lookback + horizon)`` with ``s = starts[i]``.
        """
        pieces = [
            np.arange(begin, end - self.min_rows + 1, self.stride, dtype=np.int64)
            for begin, end in self._segments(frame).values()
            if end - begin >= self.min_rows
        ]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def n_windows(self, frame: pd.DataFrame) -> int:
        return int(len(self.window_starts(frame)))

    def balanced_starts(self, frame: pd.DataFrame, per_series: int) -> np.ndarray:
        """``window_starts`` with at most ``per_series`` windows of each series: evenly spaced
        over the series' windows, its last (most recent) one included, so a long series weighs
        no more than ``per_series`` windows in training (balanced sampling).

        Args:
            frame: one series, or many in long format.
            per_series: the most windows kept of each series (a positive int).

        Returns:
            Row positions, series after series, each in time order.

        Raises:
            ConfigError: ``per_series`` is not a positive integer.

        Example:
            >>> spec.balanced_starts(long_frame, 3)   # series of 10 and 4 windows
            array([ 0,  4,  9, 20, 21, 23])
        """
        if isinstance(per_series, bool) or not isinstance(per_series, int) or per_series < 1:
            raise ConfigError("`windows_per_series` must be a positive integer (--windows-per-"
                              f"series, YAML `train.windows_per_series`). Received: "
                              f"{per_series!r}.")
        kept = []
        for begin, end in self._segments(frame).values():
            starts = np.arange(begin, end - self.min_rows + 1, self.stride)
            if len(starts) > per_series:
                # evenly spaced positions from the first window to the last
                starts = starts[np.unique(np.linspace(0, len(starts) - 1, per_series)
                                          .round().astype(int))]
            kept.append(starts)
        return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)

    def window_series(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The series id of every window of ``frame``, in the order of ``window_starts``.

        Returns:
            An object array (windows,) of ids (as ``str``) in long format (a frame indexed by
            (id, time)); None for one series.

        Example:
            >>> spec.window_series(long_frame)[:3]     # windows of series "A" come first
            array(['A', 'A', 'A'], dtype=object)
        """
        if not isinstance(frame.index, pd.MultiIndex):
            return None
        pieces = [
            np.full(len(range(begin, end - self.min_rows + 1, self.stride)), str(series),
                    dtype=object)
            for series, (begin, end) in self._segments(frame).items()
            if end - begin >= self.min_rows
        ]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=object)

    def split_short(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """``frame`` without the series too short for one window, and those series.

        Args:
            frame: a frame indexed by (id, time) (long format) or by time (one series).

        Returns:
            ``(kept, skipped)``: ``kept`` holds the series with at least ``lookback + horizon``
            rows (attrs kept); ``skipped`` is ``{id: rows}`` of the others (always empty for
            one series, whose shortness ``check_frame`` reports).
        """
        if not isinstance(frame.index, pd.MultiIndex):
            return frame, {}
        segments = self._segments(frame)
        skipped = {str(series): end - begin for series, (begin, end) in segments.items()
                   if end - begin < self.min_rows}
        if not skipped:
            return frame, {}
        keep = np.concatenate([np.arange(begin, end) for begin, end in segments.values()
                               if end - begin >= self.min_rows] or [np.zeros(0, np.int64)])
        kept = frame.iloc[keep]
        kept.attrs = dict(frame.attrs)
        return kept, skipped

    def frame(self, frame: pd.DataFrame, i: int) -> WindowFrames:
        """The ``i``-th window of ``frame`` as DataFrames with timestamps.

        Example:
            >>> w = spec.frame(frame, 0)
            >>> w.inputs.index[-1], w.targets.index[0]   # the forecast origin and the next step
        """
        starts = self.window_starts(frame)
        if not -len(starts) <= i < len(starts):
            raise DataError(
                f"window {i} does not exist: the frame has {len(starts)} windows "
                f"(lookback {self.lookback}, horizon {self.horizon}, stride {self.stride})."
            )
        s = int(starts[i])
        past = frame.iloc[s : s + self.lookback][list(self.input_columns)]
        ahead = frame.iloc[s + self.lookback : s + self.min_rows]
        future = ahead[list(self.future_covariates)] if self.future_covariates else None
        return WindowFrames(past, future, ahead[list(self.targets)])

    @staticmethod
    def _segments(frame: pd.DataFrame) -> dict:
        """Contiguous row ranges of each series: ``{id: (begin, end)}`` (id None when single)."""
        if not isinstance(frame.index, pd.MultiIndex):
            return {None: (0, len(frame))}
        codes = pd.factorize(frame.index.get_level_values(0))[0]
        changes = np.flatnonzero(np.diff(codes)) + 1
        bounds = np.concatenate([[0], changes, [len(frame)]])
        if len(bounds) - 1 != len(np.unique(codes)):
            raise DataError(
                "the rows of each series must be contiguous (sorted by id, then time); "
                "use frame.sort_index() or load the file with --id-col (YAML `data.id_col`)."
            )
        ids = frame.index.get_level_values(0)[bounds[:-1]]
        return {ids[k]: (int(bounds[k]), int(bounds[k + 1])) for k in range(len(ids))}


def make_dataset(
    frame: pd.DataFrame,
    spec: WindowSpec,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    windows_per_series: int | None = None,
) -> tf.data.Dataset:
    """Windows of ``frame`` as batches of ``(inputs, targets)``.

    Args:
        frame: a (scaled) frame holding ``spec.input_columns``.
        spec: the window shape.
        batch_size: windows per batch.
        shuffle: shuffle the window order each epoch (training).
        seed: seed of the shuffle, for reproducible runs.
        drop_remainder: drop the last incomplete batch.
        windows_per_series: at most this many windows of each series
            (``WindowSpec.balanced_starts``); None: every window.

    Returns:
        A dataset of ``(inputs, targets)``: ``inputs`` is ``(batch, lookback, n_inputs)`` or,
        with future covariates, a tuple of that and ``(batch, horizon, n_future)``;
        ``targets`` is ``(batch, horizon, n_targets)``; all float32. With static covariates
        (``spec.static_covariates``) the inputs tuple ends with ``(batch, n_static)``, read off
        each window's first row.

    Raises:
        ConfigError: ``batch_size`` is not positive.
        DataError: see ``WindowSpec.check_frame``.

    Example:
        >>> ds = make_dataset(train, WindowSpec(96, 24, ("OT",)), batch_size=32)
        >>> [t.shape for t in next(iter(ds))]
        [TensorShape([32, 96, 1]), TensorShape([32, 24, 1])]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"`batch_size` must be a positive integer. Received: {batch_size!r}.")
    spec.check_frame(frame)
    data = _as_tensor(_packed_columns(frame, spec.input_columns))  # the one copy of the data
    n_targets, n_future = spec.n_targets, spec.n_future
    static = (_as_tensor(_packed_columns(frame, spec.static_covariates))
              if spec.n_static else None)  # [rows, S], one more copy of S columns only

    past_span = tf.range(spec.lookback, dtype=tf.int64)
    ahead_span = tf.range(spec.lookback, spec.min_rows, dtype=tf.int64)

    def gather(batch_starts):
        inputs = tf.gather(data, batch_starts[:, None] + past_span)  # [B] -> [B, L, F]
        ahead = tf.gather(data, batch_starts[:, None] + ahead_span)  # [B] -> [B, H, F]
        targets = ahead[:, :, :n_targets]  # [B, H, F] -> [B, H, T]
        parts = [inputs]
        if n_future:
            parts.append(ahead[:, :, -n_future:])  # [B, H, Fu]
        if static is not None:
            parts.append(tf.gather(static, batch_starts))  # [B] -> [B, S]
        return (tuple(parts) if len(parts) > 1 else inputs), targets

    segments = WindowSpec._segments(frame)
    if windows_per_series is not None:
        table = tf.constant(spec.balanced_starts(frame, windows_per_series))
        n_windows = int(table.shape[0])
        to_starts = lambda k: tf.gather(table, k)  # noqa: E731
    elif len(segments) == 1:
        # one series: window k starts at k * stride, so no table of starts is kept at all
        stride = spec.stride
        n_windows = (len(frame) - spec.min_rows) // stride + 1
        to_starts = lambda k: k * stride  # noqa: E731
    else:
        table = tf.constant(spec.window_starts(frame))
        n_windows = int(table.shape[0])
        to_starts = lambda k: tf.gather(table, k)  # noqa: E731
    dataset = tf.data.Dataset.range(n_windows)
    if shuffle:
        dataset = dataset.shuffle(n_windows, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    # One gather per batch, run by the thread that asks for the batch: no parallel map and no
    # prefetch. Gathering a batch takes well under a millisecond, while batches produced on
    # tf.data's worker threads and freed on the training thread left glibc holding 25-35 MB of
    # freed blocks in per-thread arenas (peak extra memory 2.0-2.4x the data, against 1.2-1.5x
    # this way; benchmarks/bench_windows.py). Add ``.prefetch(1)`` if an input pipeline is slow.
    dataset = dataset.map(lambda k: gather(to_starts(k)))
    return dataset.with_options(_OPTIONS)


# tf.data's default graph rewrites serialise the dataset graph, turning the captured data tensor
# into a constant: a second full copy of the series for as long as the iterator lives (measured:
# +30.5 MB for 1M x 8 float32). The pipeline is only range -> (shuffle) -> batch -> map, so
# the rewrites have nothing to fuse; they are switched off.
_OPTIONS = tf.data.Options()
_OPTIONS.experimental_optimization.apply_default_optimizations = False
_ALIGNMENT = 64  # bytes; TensorFlow requires aligned buffers to share memory with NumPy


def _aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-ordered array whose buffer starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + _ALIGNMENT, dtype=np.uint8)
    offset = (-raw.ctypes.data) % _ALIGNMENT
    return raw[offset : offset + size].view(dtype).reshape(shape)


def _packed_columns(frame: pd.DataFrame, columns) -> np.ndarray:
    """The columns as one aligned (rows, columns) float32 array, copied once, column by column."""
    out = _aligned_empty((len(frame), len(columns)), np.float32)
    for j, column in enumerate(columns):
        out[:, j] = frame[column].to_numpy()
    return out


def _as_tensor(array: np.ndarray) -> tf.Tensor:
    """A tensor sharing the array's memory (DLPack), so the data is not copied again."""
    if array.size == 0 or array.ctypes.data % _ALIGNMENT:
        return tf.convert_to_tensor(array)
    return tf.experimental.dlpack.from_dlpack(np.ascontiguousarray(array).__dlpack__())


def window_targets(frame: pd.DataFrame, spec: WindowSpec) -> np.ndarray:
    """The actual targets of every window of ``frame``: (windows, horizon, targets).

    Only the targets are gathered (the size of the forecasts themselves).
    """
    values = frame[list(spec.targets)].to_numpy(dtype=np.float64)
    starts = spec.window_starts(frame)
    rows = starts[:, None] + spec.lookback + np.arange(spec.horizon)  # [N, H]
    return values[rows]  # [N, H, T]
