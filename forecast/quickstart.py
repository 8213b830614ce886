"""The quickstart: the whole data side on the bundled ETTh1 file, printed step by step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from forecast.data import (
    Scaler,
    WindowSpec,
    add_calendar_features,
    calendar_feature_names,
    chronological_split,
    load_csv,
    make_dataset,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_ETTH1 = PROJECT_ROOT / "datasets" / "ETTh1.csv"


def run_quickstart(path: Path = BUNDLED_ETTH1, *, echo: Callable[[str], None] = print) -> dict:
    """Loads, splits, scales and windows a CSV, printing what each step made.

    Args:
        path: the CSV (the bundled ETTh1 by default).
        echo: where the lines go.

    Returns:
        A summary dict (rows, split sizes, window counts, first batch shapes).

    Raises:
        DataError: the file cannot be used.
    """
    lookback, horizon = 96, 24
    frame = load_csv(path, time_col="date", targets=["OT"])
    echo(f"loaded {path.name}: {len(frame)} rows, frequency {frame.attrs['freq']}, "
         f"{frame.index[0]} .. {frame.index[-1]}")
    frame = add_calendar_features(frame)
    parts = chronological_split(frame, val=0.1, test=0.2, lookback=lookback)
    echo(f"split: train {len(parts.train)}, val {len(parts.val)}, test {len(parts.test)} rows "
         f"(val/test carry {lookback} rows of context)")
    scaler = Scaler("standard", columns=["OT"]).fit(parts.train)
    center, scale = scaler.params["__all__"]["center"][0], scaler.params["__all__"]["scale"][0]
    echo(f"scaler fitted on train only: OT mean {center:.3f}, std {scale:.3f}")
    spec = WindowSpec(lookback, horizon, targets=("OT",),
                      future_covariates=tuple(calendar_feature_names(frame.attrs["freq"])))
    summary = {"rows": len(frame), "train": len(parts.train), "val": len(parts.val),
               "test": len(parts.test)}
    for name, part in zip(("train", "val", "test"), parts, strict=True):
        dataset = make_dataset(scaler.transform(part), spec, batch_size=32,
                               shuffle=name == "train", seed=0)
        (past, future), targets = next(iter(dataset))
        summary[f"{name}_windows"] = spec.n_windows(part)
        echo(f"{name} windows: {summary[f'{name}_windows']}; first batch inputs "
             f"{tuple(past.shape)} + future {tuple(future.shape)} -> targets "
             f"{tuple(targets.shape)}, mean target {float(np.mean(targets)):+.3f}")
    summary["batch_shapes"] = (tuple(past.shape), tuple(future.shape), tuple(targets.shape))
    return summary
