"""What a loaded series is: its columns' roles as a typed object, kept beside the frame.

``load_csv`` returns a time-indexed frame; which columns are targets and covariates, the
frequency, the time and id columns and where the data came from are a ``SeriesInfo``. This
module is the one place that keeps that record with the frame (pandas' ``frame.attrs``, which
some pandas operations drop): ``describe(frame)`` reads it back as a ``SeriesInfo`` and
``attach(frame, info)`` writes it. Everyone else takes the typed object, so a lost record
is noticed here (the frequency re-inferred, the roles taken from the columns, as documented)
instead of being read as ``None`` in sixteen places.

Example:
    >>> frame = load_csv("datasets/ETTh1.csv", targets=["OT"])
    >>> info = describe(frame)
    >>> info.targets, info.freq, info.time_col
    (('OT',), 'h', 'date')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from forecast.data.reading import ReadOptions


@dataclass(frozen=True)
class SeriesInfo:
    """The roles of a loaded frame's columns and where it came from.

    Attributes:
        targets: the columns forecast.
        covariates: past covariates (known up to now), read as inputs.
        freq: the regular frequency (pandas alias), or None when unknown.
        time_col: the timestamp column's name in the raw file.
        id_col: the series id column of a long-format file (None for one series).
        source: the file (or other source) named in error messages.
        reading: how the file was read (separator, decimal mark, date layout, time zone), as
            ``load_csv`` detected or was told; None for a frame built by hand. Not part of
            equality: two frames with the same data and roles are described alike.
    """

    targets: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    freq: str | None = None
    time_col: str | None = None
    id_col: str | None = None
    source: str = "<frame>"
    reading: ReadOptions | None = field(default=None, compare=False)
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """Plain data (lists for the column tuples)."""
        data = asdict(self)
        data.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def with_(self, **changes) -> SeriesInfo:
        """A copy with ``changes`` (e.g. ``info.with_(freq="h")``)."""
        return replace(self, **changes)


def attach(frame: pd.DataFrame, info: SeriesInfo) -> pd.DataFrame:
    """Keeps ``info`` with ``frame`` (in place) and returns the frame.

    Args:
        frame: the frame to label.
        info: its roles.

    Returns:
        ``frame`` itself.
    """
    frame.attrs = {**info.to_dict(), **info.extra}
    return frame


def describe(frame: pd.DataFrame) -> SeriesInfo:
    """The ``SeriesInfo`` kept with ``frame`` (by ``load_csv``, ``attach`` or a split).

    A frame without one (built by hand, or one that went through a pandas operation that drops
    ``attrs``) is described from itself: every column is a target, the frequency is inferred
    from a regular ``DatetimeIndex`` (None otherwise), the time column is the index name.

    Args:
        frame: a frame, normally from ``load_csv``.

    Returns:
        Its ``SeriesInfo``.
    """
    kept = dict(frame.attrs or {})
    known = {k: kept.pop(k) for k in ("targets", "covariates", "freq", "time_col", "id_col",
                                      "source", "reading") if k in kept}
    targets = tuple(known.get("targets") or frame.columns)
    covariates = tuple(c for c in known.get("covariates") or () if c not in targets)
    freq = known.get("freq")
    if freq is None and isinstance(frame.index, pd.DatetimeIndex) and len(frame) > 2:
        freq = pd.infer_freq(frame.index)
    index_name = frame.index.names[-1] if isinstance(frame.index, pd.MultiIndex) else (
        frame.index.name)
    return SeriesInfo(
        targets=targets, covariates=covariates, freq=freq,
        time_col=known.get("time_col") or index_name,
        id_col=known.get("id_col"), source=known.get("source") or "<frame>",
        reading=ReadOptions.from_dict(known["reading"]) if known.get("reading") else None,
        extra=kept,
    )


def carry(source: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """Gives ``out`` (made from ``source`` by a transform) the same ``SeriesInfo``."""
    out.attrs = dict(source.attrs)
    return out


__all__ = ["SeriesInfo", "attach", "describe", "carry"]
