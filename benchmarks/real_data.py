"""Do the defaults of `forecast train CSV --target X --horizon H` win on real data?

For each real series below (read from the Python package that ships it; nothing is downloaded)
this runs the rolling-origin backtest that registration runs (``forecast.workflow.run_backtest``:
3 folds, default fold size, expanding) of the DEFAULT forecaster — ``ForecasterConfig(horizon=H)``
with nothing else set, exactly what ``forecast train`` builds (only ``train.verbose=0``) — and of
the baselines naive, seasonal naive and linear on the same folds, then applies the promotion
rule of ``forecast.evaluation.promotion``: the model is champion only when its mean MASE is
strictly lower than the best baseline's, else the best baseline is champion.

| name | package | series | freq | rows | horizon |
|---|---|---|---|---|---|
| taylor | pmdarima | electricity demand, England & Wales, 2000 | 30min | 4,032 | 48 (a day) |
| seattle | vega_datasets | Seattle daily max temperature 2012-2015 | D | 1,461 | 14 |
| co2 | statsmodels | Mauna Loa weekly CO2 1958-2001 | W-SAT | 2,284 | 8 |
| wineind | pmdarima | Australian monthly wine sales 1980-1994 | MS | 176 | 12 |
| msft | vega_datasets | MSFT monthly price 2000-2010 (stocks.csv) | MS | 123 | 12 |
| sunspots_m | pmdarima | monthly mean sunspot numbers 1749-1983 | MS | 2,820 | 12 |
| sunspots_y | statsmodels | yearly sunspot numbers 1700-2008 | YS | 309 | 10 |

Series longer than ``--max-rows`` (default 4,032) keep their last rows only; none of the seven is
longer, so every series is used whole.

Alternative configurations (for choosing defaults on the backtest folds only):

    --set model.units=64 --set train.patience=3         # dotted ForecasterConfig fields
    --variant segment                                    # a named preset (see VARIANTS)
    --variant default segment units64 ...                # several, one table each + a summary

``model.segment_length=auto`` sets the segment length to gcd(lookback, horizon), the largest
length the segment setup accepts for the lookback chosen from the frequency.

Usage:
    .venv/bin/python benchmarks/real_data.py                   # the defaults (make bench)
    .venv/bin/python benchmarks/real_data.py --datasets taylor co2 --variant default segment
    .venv/bin/python benchmarks/real_data.py --variant ... --out benchmarks/results/real_data.md

The last line is the headline: on how many datasets the default model beats the best baseline,
and on how many the champion registration would choose is no worse than the best baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forecast.data.dataset import describe  # noqa: E402
from forecast.data.io import validate_frame  # noqa: E402
from forecast.errors import ForecastError  # noqa: E402
from forecast.forecaster import with_lookback  # noqa: E402
from forecast.options import BASELINES, ForecasterConfig  # noqa: E402
from forecast.workflow import run_backtest  # noqa: E402

# -- the data -----------------------------------------------------------------------------------


def _month_index(labels) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(labels), format="%b %Y"))


def _taylor() -> pd.DataFrame:
    from pmdarima.datasets import load_taylor

    values = load_taylor(as_series=False)
    # Monday 5 June 2000 to Sunday 27 August 2000, half-hourly (R forecast::taylor)
    times = pd.date_range("2000-06-05 00:00", periods=len(values), freq="30min")
    return pd.DataFrame({"date": times, "demand": values})


def _seattle() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    return pd.DataFrame({"date": pd.to_datetime(frame["date"]), "temp_max": frame["temp_max"]})


def _co2() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data  # weekly, W-SAT, 59 empty weeks (interpolated)
    return pd.DataFrame({"date": frame.index, "co2": frame["co2"].to_numpy()})


def _wineind() -> pd.DataFrame:
    from pmdarima.datasets import load_wineind

    series = load_wineind(as_series=True)
    return pd.DataFrame({"date": _month_index(series.index), "sales": series.to_numpy()})


def _msft() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = local_data.stocks()
    frame = frame[frame["symbol"] == "MSFT"]
    return pd.DataFrame({"date": pd.to_datetime(frame["date"]), "price": frame["price"]})


def _sunspots_monthly() -> pd.DataFrame:
    from pmdarima.datasets import load_sunspots

    series = load_sunspots(as_series=True)
    return pd.DataFrame({"date": _month_index(series.index), "sunspots": series.to_numpy()})


def _sunspots_yearly() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data
    years = frame["YEAR"].astype(int).astype(str)
    return pd.DataFrame({"date": pd.to_datetime(years, format="%Y"),
                         "sunspots": frame["SUNACTIVITY"].to_numpy()})


#: name -> (loader, target, horizon, why this horizon)
DATASETS = {
    "taylor": (_taylor, "demand", 48, "a day"),
    "seattle": (_seattle, "temp_max", 14, "two weeks"),
    "co2": (_co2, "co2", 8, "two months"),
    "wineind": (_wineind, "sales", 12, "a year"),
    "msft": (_msft, "price", 12, "a year"),
    "sunspots_m": (_sunspots_monthly, "sunspots", 12, "a year"),
    "sunspots_y": (_sunspots_yearly, "sunspots", 10, "about a solar cycle"),
}


def load(name: str, max_rows: int) -> pd.DataFrame:
    """The series as ``load_csv`` would return it from a CSV of the same columns."""
    loader, target, _, _ = DATASETS[name]
    raw = loader().reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = validate_frame(raw, source=name, time_col="date", targets=[target])
    if len(frame) > max_rows:
        frame = frame.iloc[-max_rows:]
        frame = validate_frame(frame, source=name, targets=[target])
    return frame


# -- the configurations -------------------------------------------------------------------------

#: named alternatives to the defaults (dotted ForecasterConfig fields).
VARIANTS = {
    "default": {},
    # the segment setup reads no future covariates: calendar features off (they are on by default)
    "segment": {"setup": "segment", "model.segment_length": "auto", "calendar": False},
    "units16": {"model.units": 16},
    "units64": {"model.units": 64},
    "revin": {"model.instance_norm": "revin"},
    "no_skip": {"model.linear_skip": False},
    "no_calendar": {"calendar": False},
    "lr3e-3": {"train.learning_rate": 3e-3},
    "epochs50": {"train.epochs": 50, "train.patience": 10},
    "patience3": {"train.patience": 3},
    "lr3e-3_epochs50": {"train.learning_rate": 3e-3, "train.epochs": 50, "train.patience": 10},
    "epochs100": {"train.epochs": 100, "train.patience": 10},
    "gru": {"model.cell": "gru"},
    "mae": {"train.loss": "mae"},
    "huber": {"train.loss": "huber"},
}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str]) -> dict:
    """``["model.units=64", ...]`` -> ``{"model.units": 64, ...}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        out[key.strip()] = _value(value.strip())
    return out


def build_config(horizon: int, overrides: dict, freq, n: int) -> tuple[ForecasterConfig, str]:
    """The config ``forecast train`` would build, with ``overrides`` applied, and its lookback
    chosen as ``run_backtest`` chooses it (``with_lookback`` on half the rows)."""
    data: dict = {"horizon": horizon, "train": {"verbose": 0}}
    auto_segment = False
    for key, value in overrides.items():
        if key == "model.segment_length" and value == "auto":
            auto_segment = True
            continue
        *groups, leaf = key.split(".")
        place = data
        for group in groups:
            place = place.setdefault(group, {})
        place[leaf] = value
    config, reason = with_lookback(ForecasterConfig.parse(data), freq, n // 2)
    if auto_segment:
        w = math.gcd(config.lookback, horizon)
        config = config.model_copy(update={"model": config.model.replace(segment_length=w)})
    return config, reason


# -- the benchmark ------------------------------------------------------------------------------


def run_one(name: str, frame: pd.DataFrame, overrides: dict, folds: int) -> dict:
    _, target, horizon, _ = DATASETS[name]
    freq = describe(frame).freq
    config, reason = build_config(horizon, overrides, freq, len(frame))
    started = time.perf_counter()
    report = run_backtest(frame, config, folds=folds, baselines=BASELINES)
    seconds = time.perf_counter() - started
    model = report["model"]["mase"]
    base = {b: report["baselines"][b]["mase"] for b in report["baselines"]}
    best = min(base, key=base.get)
    champion = "model" if model < base[best] else best
    return {"dataset": name, "freq": str(freq), "rows": len(frame), "horizon": horizon,
            "lookback": config.lookback, "lookback_reason": reason, "model": model,
            **base, "best_baseline": best, "champion": champion,
            "champion_mase": model if champion == "model" else base[best],
            "seconds": seconds,
            "segment_length": config.model.segment_length if config.setup == "segment" else None}


def table(rows: list[dict]) -> str:
    head = ("| dataset | freq | rows | horizon | lookback | model MASE | naive | seasonal naive "
            "| linear | champion | wall s |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        cells = [r["dataset"], r["freq"], f"{r['rows']:,}", r["horizon"], r["lookback"],
                 f"**{r['model']:.3f}**" if r["champion"] == "model" else f"{r['model']:.3f}"]
        for b in BASELINES:
            v = r.get(b)
            cells.append("–" if v is None else f"{v:.3f}")
        cells += [r["champion"], f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def summary_table(results: dict[str, list[dict]], names: list[str]) -> str:
    """Model MASE per configuration and dataset, wins, and the geometric mean of the model's
    MASE over the best baseline's (below 1: better than the best baseline on average)."""
    lines = ["| configuration | " + " | ".join(names) + " | wins | model / best baseline |",
             "|" + "---|" * (len(names) + 3)]
    best = {}
    for label, rows in results.items():
        by_name = {r["dataset"]: r for r in rows}
        cells, ratios = [], []
        for name in names:
            r = by_name.get(name)
            if r is None:
                cells.append("failed")
                continue
            best.setdefault(name, r)
            ratios.append(r["model"] / r[r["best_baseline"]])
            cells.append(f"**{r['model']:.3f}**" if r["champion"] == "model"
                         else f"{r['model']:.3f}")
        wins = sum(r["champion"] == "model" for r in rows)
        mean = np.exp(np.mean(np.log(ratios))) if ratios else float("nan")
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {wins}/{len(rows)} | {mean:.3f} |")
    lines.append("| best baseline | " + " | ".join(
        f"{best[n][best[n]['best_baseline']]:.3f} ({best[n]['best_baseline']})" if n in best
        else "–" for n in names) + " | | |")
    return ("### model MASE by configuration (bold: beats the best baseline; last column the "
            "geometric mean of model MASE / best-baseline MASE)\n\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--variant", nargs="+", default=None, choices=list(VARIANTS),
                        help="named configurations to compare (default: the defaults only)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a ForecasterConfig field (dotted) for every run, e.g. model.units=64")
    parser.add_argument("--seed", type=int, nargs="+", default=None,
                        help="train.seed values to run (default: the default seed, 42)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=4032)
    parser.add_argument("--out", type=Path, default=None, help="append the tables (markdown)")
    parser.add_argument("--json", type=Path, default=None, help="write every row as JSON")
    parser.add_argument("--combine", type=Path, nargs="+", default=None,
                        help="only print the summary of earlier --json files")
    args = parser.parse_args(argv)
    if args.combine:
        results = {}
        for path in args.combine:
            results.update(json.loads(path.read_text()))
        print(summary_table(results, [n for n in DATASETS
                                      if any(r["dataset"] == n for v in results.values()
                                             for r in v)]))
        return 0

    extra = parse_sets(args.set)
    variants = args.variant or ["default"]
    seeds = args.seed or [None]
    frames = {name: load(name, args.max_rows) for name in args.datasets}
    results: dict[str, list[dict]] = {}
    markdown = []
    total_started = time.perf_counter()
    for variant in variants:
        for seed in seeds:
            overrides = {**VARIANTS[variant], **extra}
            if seed is not None:
                overrides["train.seed"] = seed
            label = variant + (f" seed {seed}" if seed is not None else "")
            if extra:
                label += " " + " ".join(f"{k}={v}" for k, v in extra.items())
            rows = []
            for name, frame in frames.items():
                try:
                    row = run_one(name, frame, overrides, args.folds)
                except ForecastError as exc:  # a configuration this series cannot take
                    print(f"  {label:<24} {name:<11} FAILED: {exc}", flush=True)
                    continue
                row["variant"] = variant
                row["seed"] = seed
                rows.append(row)
                print(f"  {label:<24} {name:<11} model {row['model']:.3f} best baseline "
                      f"{row['best_baseline']} {row[row['best_baseline']]:.3f} "
                      f"-> {row['champion']} ({row['seconds']:.0f} s)", flush=True)
            results[label] = rows
            wins = sum(r["champion"] == "model" for r in rows)
            text = (f"### {label}: {json.dumps(overrides) if overrides else 'the defaults'}\n\n"
                    f"{table(rows)}\n\nmodel beats the best baseline on {wins}/{len(rows)}; "
                    f"total {sum(r['seconds'] for r in rows):.0f} s\n")
            print("\n" + text, flush=True)
            markdown.append(text)

    if len(results) > 1:
        summary = summary_table(results, list(frames))
        print("\n" + summary)
        markdown.append(summary)

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as handle:
            handle.write("\n".join(markdown) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))

    rows = next(iter(results.values()))
    wins = sum(r["champion"] == "model" for r in rows)
    safe = sum(r["champion_mase"] <= r[r["best_baseline"]] for r in rows)
    print(f"total wall {time.perf_counter() - total_started:.0f} s")
    print(f"headline ({next(iter(results))}): the model beats the best baseline on {wins}/"
          f"{len(rows)} real datasets; the champion registration would choose is no worse than "
          f"the best baseline on {safe}/{len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
