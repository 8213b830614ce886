"""Do the conformal prediction intervals of `forecast train --interval` cover what they claim?

For each bundled series below this runs what ``forecast train CSV --target X --interval 0.8
--interval 0.9 --interval 0.95`` runs (``forecast.workflow.train_and_evaluate``: the default
chronological split, 70 % train / 10 % validation / 20 % test, the default forecaster with a
moderate epoch count) and prints, for the model and each baseline, the empirical coverage of its
intervals on the test part beside the nominal level, their mean width (original units) and the
Winkler score. The intervals are split conformal per horizon step, calibrated on the validation
windows only (``Forecaster.calibrate``): nothing is chosen on the test part.

| series | file | target | freq | horizon |
|---|---|---|---|---|
| ETTh1-OT | datasets/ETTh1.csv | OT (oil temperature) | h | 24 |
| ETTh1-HUFL | datasets/ETTh1.csv | HUFL (high useful load) | h | 24 |
| co2 | datasets/co2.csv | co2 (Mauna Loa, weekly) | W-SAT | 52 (the CLI default: a season) |

The headline (last line) checks the 90 % interval of the model: its test coverage must lie in
0.85-0.95 on every series. A miss is reported as such (a series whose level or spread drifts
between the validation and the test part is not exchangeable, so the guarantee does not hold).

Usage (a few minutes on CPU):
    nice -n 19 .venv/bin/python benchmarks/intervals.py [--epochs 5] [--series ETTh1-OT co2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SERIES = {
    "ETTh1-OT": (ROOT / "datasets" / "ETTh1.csv", "OT", 24),
    "ETTh1-HUFL": (ROOT / "datasets" / "ETTh1.csv", "HUFL", 24),
    "co2": (ROOT / "datasets" / "co2.csv", "co2", None),
}
LEVELS = (0.8, 0.9, 0.95)
BAND = (0.85, 0.95)


def run_series(name: str, epochs: int, seed: int) -> dict:
    from forecast.cli.model_commands import _default_horizon
    from forecast.workflow import load_for_training, train_and_evaluate

    path, target, horizon = SERIES[name]
    frame = load_for_training(path, targets=[target])
    horizon = horizon or _default_horizon(frame)
    config = {"horizon": horizon, "train": {"epochs": epochs, "verbose": 0, "seed": seed}}
    started = time.perf_counter()
    report = train_and_evaluate(frame, config, intervals=LEVELS)
    return {"name": name, "horizon": horizon, "seconds": time.perf_counter() - started,
            "intervals": report.intervals, "mae": report.metrics["model"]["mae"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES))
    args = parser.parse_args(argv)

    results = [run_series(name, args.epochs, args.seed) for name in args.series]
    print()
    print("| series | forecaster | cov 80 | cov 90 | cov 95 | width 90 | winkler 90 |")
    print("|---|---|---|---|---|---|---|")
    misses = []
    for result in results:
        intervals = result["intervals"]
        rows = [("model", intervals["model"]), *intervals["baselines"].items()]
        for who, levels in rows:
            print(f"| {result['name']} (h {result['horizon']}, n_cal {intervals['n_calibration']})"
                  f" | {who} | {levels['80']['coverage']:.3f} | {levels['90']['coverage']:.3f} | "
                  f"{levels['95']['coverage']:.3f} | {levels['90']['width']:.4g} | "
                  f"{levels['90']['winkler']:.4g} |")
        coverage = intervals["model"]["90"]["coverage"]
        if not BAND[0] <= coverage <= BAND[1]:
            misses.append(f"{result['name']} {coverage:.3f}")
        print(f"# {result['name']}: trained and calibrated in {result['seconds']:.0f} s, "
              f"model test MAE {result['mae']:.4g}")
    shown = ", ".join(f"{r['name']} {r['intervals']['model']['90']['coverage']:.3f}"
                      for r in results)
    verdict = ("all within" if not misses else f"MISSED on {', '.join(misses)}; outside")
    print(f"HEADLINE: model 90 % conformal interval test coverage: {shown} ({verdict} "
          f"{BAND[0]}-{BAND[1]}; {args.epochs} epochs, validation-window calibration)")


if __name__ == "__main__":
    main()
