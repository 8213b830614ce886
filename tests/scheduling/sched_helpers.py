"""Jobs for the scheduler tests, stored by text reference ("sched_helpers:record_run")."""

import time


def record_run(path: str, seconds: float = 0.0) -> None:
    """Appends "start <t>" and, after ``seconds``, "end <t>" to the file ``path``."""
    with open(path, "a") as handle:
        handle.write(f"start {time.time():.3f}\n")
    time.sleep(seconds)
    with open(path, "a") as handle:
        handle.write(f"end {time.time():.3f}\n")


def read_runs(path) -> list[tuple[float, float | None]]:
    """``[(start, end), ...]`` in order (end None for a run still going)."""
    runs = []
    try:
        lines = open(path).read().split("\n")
    except FileNotFoundError:
        return runs
    for line in filter(None, lines):
        kind, stamp = line.split()
        if kind == "start":
            runs.append([float(stamp), None])
        else:
            open_runs = [r for r in runs if r[1] is None]
            open_runs[0][1] = float(stamp)
    return [tuple(r) for r in runs]
