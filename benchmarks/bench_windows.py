"""Windowing benchmark: forecast.data.make_dataset vs keras.utils.timeseries_dataset_from_array.

1,000,000 rows x 8 float32 columns (32 MB), lookback 336, horizon 96, batch 128. For each
method: windows per second over one pass and the peak extra resident memory (RSS sampled every
2 ms by a background thread, minus the RSS just before the method starts). Keras's function can
only cut one-step targets (keras-team/keras#18389); ours yields the full 96-step targets. Keras
is timed on its first 200 batches (its rate is steady; a full pass takes minutes).

Run: .venv/bin/python benchmarks/bench_windows.py      Last line: the headline.
"""

from __future__ import annotations

import gc
import os
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from forecast.data import WindowSpec, make_dataset  # noqa: E402

ROWS, COLUMNS, LOOKBACK, HORIZON, BATCH = 1_000_000, 8, 336, 96, 128
KERAS_BATCHES = 200


class PeakRSS:
    """Samples this process's RSS in a thread; ``extra`` is the peak minus the starting RSS."""

    def __init__(self, interval: float = 0.002):
        self.process = psutil.Process()
        self.interval = interval

    def __enter__(self):
        gc.collect()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.extra = self.peak - self.start


def main() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((ROWS, COLUMNS)).astype(np.float32)
    raw_mb = values.nbytes / 2**20
    columns = [f"c{j}" for j in range(COLUMNS)]
    frame = pd.DataFrame(values, columns=columns,
                         index=pd.date_range("2000-01-01", periods=ROWS, freq="min"))
    spec = WindowSpec(LOOKBACK, HORIZON, targets=tuple(columns[:1]),
                      past_covariates=tuple(columns[1:]))
    n_windows = spec.n_windows(frame)

    # warm up TensorFlow once (graph building, thread pools) on a small frame
    for _ in make_dataset(frame.iloc[:5000], spec, batch_size=BATCH):
        pass

    with PeakRSS() as ours_mem:
        began = time.perf_counter()
        seen = 0
        for _inputs, targets in make_dataset(frame, spec, batch_size=BATCH):
            seen += int(targets.shape[0])
        ours_s = time.perf_counter() - began
    assert seen == n_windows, (seen, n_windows)
    ours_rate = seen / ours_s

    with PeakRSS() as keras_mem:
        dataset = keras.utils.timeseries_dataset_from_array(
            values[:-LOOKBACK], values[LOOKBACK:, 0], sequence_length=LOOKBACK, batch_size=BATCH
        )
        began = time.perf_counter()
        keras_seen = 0
        for k, (inputs, _targets) in enumerate(dataset):
            keras_seen += int(inputs.shape[0])
            if k + 1 >= KERAS_BATCHES:
                break
        keras_s = time.perf_counter() - began
    keras_rate = keras_seen / keras_s

    mb = 2**20
    print(f"data: {ROWS:,} rows x {COLUMNS} columns float32 = {raw_mb:.0f} MB; "
          f"lookback {LOOKBACK}, horizon {HORIZON}, batch {BATCH}")
    print(f"{'method':<44}{'windows':>10}{'seconds':>10}{'windows/s':>12}{'peak extra MB':>15}")
    print(f"{'forecast make_dataset (96-step targets)':<44}{seen:>10,}{ours_s:>10.2f}"
          f"{ours_rate:>12,.0f}{ours_mem.extra / mb:>15.1f}")
    print(f"{'keras timeseries_dataset_from_array (1 step)':<44}{keras_seen:>10,}{keras_s:>10.2f}"
          f"{keras_rate:>12,.0f}{keras_mem.extra / mb:>15.1f}")
    print(f"memory: ours {ours_mem.extra / mb:.1f} MB extra = "
          f"{ours_mem.extra / values.nbytes:.2f}x the raw array (must < 2x, goal <= 1x)")
    print(f"headline: make_dataset {ours_rate / keras_rate:.1f}x the throughput of "
          f"keras.utils.timeseries_dataset_from_array "
          f"({ours_rate:,.0f} vs {keras_rate:,.0f} windows/s), "
          f"{ours_mem.extra / values.nbytes:.2f}x raw memory")


if __name__ == "__main__":
    main()
