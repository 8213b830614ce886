"""How fast the `forecast` command starts: median wall time of `forecast --help` (and of
`forecast train --help` and `forecast pipeline validate`) over 5 runs each, beside
`python -c pass` (the floor: the interpreter alone) measured in the same run.

The command never imports TensorFlow, Keras or MLflow before it has work for them
(forecast/options.py holds the settings without them). Must: `forecast --help` <= 1.5 s on
2 CPU cores; goal: <= 0.5 s above the floor.

Usage:
    .venv/bin/python benchmarks/cli_startup.py [--runs 5]
The last line is the headline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORECAST = Path(sys.executable).with_name("forecast")


def median_seconds(argv: list[str], runs: int) -> float:
    """The median wall time of ``argv`` over ``runs`` runs (after one warm-up run)."""
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    floor = median_seconds([sys.executable, "-c", "pass"], runs)
    cases = {
        "forecast --help": [str(FORECAST), "--help"],
        "forecast train --help": [str(FORECAST), "train", "--help"],
        "forecast pipeline validate quickstart": [str(FORECAST), "pipeline", "validate",
                                                  "pipelines/quickstart.yaml"],
    }
    print(f"{'command':42s} {'median s':>9s} {'above floor':>12s}")
    print(f"{'python -c pass (floor)':42s} {floor:9.3f} {0.0:12.3f}")
    results = {}
    for name, argv in cases.items():
        results[name] = median_seconds(argv, runs)
        print(f"{name:42s} {results[name]:9.3f} {results[name] - floor:12.3f}")
    top = results["forecast --help"]
    print(f"forecast --help: median {top:.2f} s over {runs} runs, {top - floor:.2f} s above "
          f"python -c pass ({floor:.2f} s); must <= 1.5 s: {'met' if top <= 1.5 else 'MISSED'}, "
          f"goal <= 0.5 s above the floor: {'met' if top - floor <= 0.5 else 'missed'}")


if __name__ == "__main__":
    main()
