"""How long does one request to a served global model take, beside the network's own time?

A global model (``forecast train --id-col``: the defaults, one epoch — the time of a request does
not depend on how well the model was trained) is trained on the M4 Hourly training files
(``../shared/data/m4``, long format, 414 series), saved as the MLflow pyfunc ``forecast predict``
and ``forecast serve`` load, and loaded back with ``mlflow.pyfunc.load_model``. Each request
holds the last ``lookback`` rows of 3, 30 or 300 series (the raw history: id, time and target
columns, timestamps as text, as a JSON request carries them). Timed, the median of ``--repeats``
calls after a warm-up:

- **pyfunc**: ``model.predict(request)``: reading and checking the history per series
  (``read_served_history``), windowing, scaling, the network, scaling back, the forecast frame;
- **network alone** (the peer: the least any server of this model must spend): the Keras
  model's own call on the same batch of windows, already scaled and stacked.

The ratio pyfunc / network is the cost of taking raw history instead of tensors. The last line
is the headline.

Usage (about a minute on 2 cores):
    .venv/bin/python benchmarks/serving.py [--repeats 7] [--series 3 30 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from m4 import DATA, HORIZON, read_wide, to_long  # noqa: E402


def timed(call, repeats: int) -> float:
    """The median seconds of ``repeats`` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--series", type=int, nargs="+", default=[3, 30, 300])
    parser.add_argument("--data-dir", type=Path, default=DATA)
    args = parser.parse_args()

    import mlflow

    from forecast.forecaster import Forecaster, with_lookback

    with tempfile.TemporaryDirectory(prefix="serving-") as tmp:
        frame = to_long(read_wide(args.data_dir / "Hourly-train.csv"), Path(tmp), "m4")
        config, reason = with_lookback({"horizon": HORIZON, "train": {"epochs": 1,
                                                                       "verbose": 0}}, "h",
                                       int(frame.groupby(level=0).size().median()))
        began = time.perf_counter()
        forecaster = Forecaster(config, lookback_reason=reason).fit(frame)
        print(f"trained a global model over {len(forecaster.ids)} series in "
              f"{time.perf_counter() - began:.0f} s (lookback {forecaster.spec.lookback}, "
              f"horizon {HORIZON}, {forecaster.config.setup})")
        forecaster.save(Path(tmp) / "model", time_col="time", id_col="id")
        model = mlflow.pyfunc.load_model(str(Path(tmp) / "model"))
        lookback = forecaster.spec.lookback
        recent = frame.groupby(level=0, sort=False).tail(lookback).reset_index()
        recent["time"] = recent["time"].dt.strftime("%Y-%m-%d %H:%M:%S")  # as JSON sends it
        ids = list(dict.fromkeys(recent["id"]))

        network = forecaster.model
        rows = []
        for n in args.series:
            request = recent[recent["id"].isin(ids[:n])].reset_index(drop=True)
            served = model.predict(request)
            assert len(served) == n * HORIZON and np.isfinite(served["y"]).all()
            # the peer: the same windows, scaled and stacked, through the network alone
            windows = np.stack([
                forecaster.scaler.transform_array(
                    request.loc[request["id"] == key, ["y"]].to_numpy(), ["y"], series=key)
                for key in ids[:n]]).astype(np.float32)  # [S, L, 1]
            pyfunc_s = timed(lambda request=request: model.predict(request), args.repeats)
            network_s = timed(lambda windows=windows: network(windows, training=False),
                              args.repeats)
            rows.append((n, pyfunc_s, network_s))

    print()
    print("| series per request | pyfunc predict (ms) | network alone (ms) | ratio | "
          "ms per series |")
    print("|---|---|---|---|---|")
    for n, pyfunc_s, network_s in rows:
        print(f"| {n} | {pyfunc_s * 1e3:.1f} | {network_s * 1e3:.1f} | "
              f"{pyfunc_s / network_s:.1f}x | {pyfunc_s * 1e3 / n:.2f} |")
    n, pyfunc_s, network_s = rows[-1]
    print(f"headline: one request of {n} series takes {pyfunc_s * 1e3:.0f} ms through the "
          f"pyfunc, {pyfunc_s / network_s:.1f}x the network's own {network_s * 1e3:.0f} ms on "
          f"the same batch ({pyfunc_s * 1e3 / n:.2f} ms per series; median of {args.repeats})")


if __name__ == "__main__":
    main()
