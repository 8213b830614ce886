"""M4 Hourly: one global model over 414 series, scored with the competition's own metrics.

Data: the competition's wide files (``../shared/data/m4/Hourly-train.csv`` and
``Hourly-test.csv`` relative to the repository; ``--data-dir`` to override; see the README
there). Each row (series) is turned into long format with hourly timestamps from a fixed start
(2000-01-01 00:00; the files carry none, so hour-of-day is unknown and no calendar features
are used).

Protocol (Makridakis, Spiliotis, Assimakopoulos 2020; ``Benchmarks and Evaluation.R`` of
github.com/Mcompetitions/M4-methods): 48 point forecasts per series from its training part;
sMAPE (percent) and MASE (m = 24, scale = mean absolute seasonal difference of the training
part), each averaged over every series and step; OWA = ½ (sMAPE / sMAPE_Naive2 + MASE /
MASE_Naive2). Naive2 is the naive forecast of the seasonally adjusted series (R's classical
multiplicative ``decompose``), applied only when the 90 % autocorrelation test at lag 24 finds
seasonality; its test scores must reproduce the published 18.383 / 2.395 (the protocol check).

Model choice never looks at the test part: validation = the last 48 points of each training
part. The global model is trained exactly as ``forecast train CSV --id-col id --target y
--horizon 48`` trains it (``forecast.forecaster.with_lookback`` then ``Forecaster.fit``, the
defaults of ``forecast.options`` and ``forecast.models.global_defaults``) on the training parts
without their last 48 points, with those 48 (plus lookback context) as its validation split
(early stopping, best weights restored). It then forecasts the validation 48 (scored as
"val", what settings are chosen on) and, from the full training part, the 48 test points.

With ``--interval 0.8 --interval 0.95`` the model and its baselines are also calibrated on the
validation 48 of every series (``Forecaster.calibrate``: split conformal, each series' errors in
its own scaled units) and their intervals are scored on the test 48: coverage beside the
nominal level, and the competition's interval score MSIS (the Winkler score divided by the
MASE scale, averaged over every series and step).

Usage:
    .venv/bin/python benchmarks/m4.py --check                  # the baselines only (fast)
    .venv/bin/python benchmarks/m4.py                          # the defaults, all 414 series
    .venv/bin/python benchmarks/m4.py --series 80 --val-only --set model.units=64 \\
        --set lookback=168 --set train.epochs=3                 # a quick validation experiment

Every model run is logged to MLflow (experiment "m4-hourly-benchmark"; --no-track to skip).
The last line is the headline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "m4"
HORIZON = 48
SEASON = 24
START = "2000-01-01 00:00"
#: the competition's published Hourly numbers (sMAPE, MASE, OWA)
PUBLISHED = {
    "Naive2": (18.383, 2.395, 1.000),
    "SES": (18.094, 2.385, 0.990),
    "ES-RNN (Smyl, M4 winner)": (9.328, 0.893, 0.440),
}
STEPS = (1, 12, 24, 36, 48)


# -- data -------------------------------------------------------------------------------------


def read_wide(path: Path) -> dict[str, np.ndarray]:
    """One series per row: ``{id: values}`` (trailing empty cells dropped)."""
    frame = pd.read_csv(path, index_col=0)
    return {str(key): row.dropna().to_numpy(dtype=np.float64) for key, row in frame.iterrows()}


def to_long(series: dict[str, np.ndarray], folder: Path, name: str):
    """The series as a long-format ``load_csv`` frame (id, time) -> y, through a CSV file as a
    user's would be read; hourly timestamps from ``START``."""
    from forecast.data import load_csv

    parts = [pd.DataFrame({"id": key, "time": pd.date_range(START, periods=len(values),
                                                              freq="h"), "y": values})
             for key, values in series.items()]
    path = folder / f"{name}.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return load_csv(path, time_col="time", id_col="id", targets=["y"], freq="h")


# -- the competition's metrics and benchmarks -------------------------------------------------


def mase_scale(insample: np.ndarray, m: int = SEASON) -> float:
    """The mean absolute seasonal difference of the training part (``mase_cal``)."""
    return float(np.mean(np.abs(insample[m:] - insample[:-m])))


def smape(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Per-step sMAPE in percent (``smape_cal``)."""
    return 200.0 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """R's ``acf`` (biased, mean removed): lags 1..nlags."""
    x = x - x.mean()
    denominator = float(np.dot(x, x))
    return np.array([np.dot(x[k:], x[:-k]) / denominator for k in range(1, nlags + 1)])


def seasonality_test(x: np.ndarray, m: int = SEASON) -> bool:
    """The M4 90 % autocorrelation test (``SeasonalityTest``): |acf(m)| above
    1.645/sqrt(n)·sqrt(1 + 2·Σ_{k<m} acf(k)²); never seasonal under 3 seasons of data."""
    if len(x) < 3 * m:
        return False
    r = acf(x, m)
    limit = 1.645 / np.sqrt(len(x)) * np.sqrt(1 + 2 * np.sum(r[: m - 1] ** 2))
    return bool(abs(r[m - 1]) > limit)


def seasonal_indices(x: np.ndarray, m: int = SEASON) -> np.ndarray:
    """R's ``decompose(type="multiplicative")$seasonal``: a centred 2×m moving average as the
    trend, x / trend averaged per position of the season (NaN-skipping), normalised to mean 1,
    repeated from the first observation."""
    n = len(x)
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(weights) // 2
    trend = np.full(n, np.nan)
    trend[half:n - half] = np.convolve(x, weights, mode="valid")
    ratio = x / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    figure = figure / figure.mean()
    return np.resize(figure, n)


def deseasonalise(x: np.ndarray, horizon: int = HORIZON, m: int = SEASON):
    """(seasonally adjusted x, the seasonal factors of the horizon): as ``Benchmarks`` in the
    M4 code; factors of 1 when the test finds no seasonality."""
    if not seasonality_test(x, m):
        return x, np.ones(horizon)
    seasonal = seasonal_indices(x, m)
    return x / seasonal, np.resize(seasonal[-m:], horizon)


def ses_forecast(x: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """Simple exponential smoothing: alpha and the initial level by least squares of the
    one-step errors (R's ``ses`` fits the same model by likelihood, whose maximum for additive
    errors is the same least-squares point), a flat forecast at the last level.

    The one-step forecasts are linear in the initial level (``p_t = p0_t + (1 - alpha)^t l0``),
    so for each alpha the best l0 is closed form and only alpha is searched (bounded Brent).
    """
    from scipy.optimize import minimize_scalar
    from scipy.signal import lfilter

    steps = np.arange(len(x))

    def fitted(alpha):  # (the one-step forecasts and the last level, at the best l0)
        after = lfilter([alpha], [1.0, alpha - 1.0], x)  # levels from l0 = 0
        base = np.r_[0.0, after[:-1]]
        decay = (1.0 - alpha) ** steps
        level0 = float(np.dot(decay, x - base) / np.dot(decay, decay))
        return base + decay * level0, after[-1] + (1.0 - alpha) ** len(x) * level0

    def sse(alpha):
        return float(np.sum((x - fitted(alpha)[0]) ** 2))

    alpha = minimize_scalar(sse, bounds=(1e-4, 0.9999), method="bounded",
                            options={"xatol": 1e-6}).x
    return np.full(horizon, fitted(alpha)[1])


def m4_benchmarks(train: np.ndarray, horizon: int = HORIZON) -> dict[str, np.ndarray]:
    """The competition's Naive, sNaive, Naive2 and SES forecasts of one series."""
    adjusted, factors = deseasonalise(train, horizon)
    return {
        "Naive2": np.full(horizon, adjusted[-1]) * factors,
        "SES": ses_forecast(adjusted, horizon) * factors,
        "Naive": np.full(horizon, train[-1]),
        "sNaive": np.resize(train[-SEASON:], horizon),
    }


# -- scoring ----------------------------------------------------------------------------------


@dataclass
class Scores:
    """sMAPE and MASE of one method over every series: per (series, step) arrays."""

    smape: np.ndarray  # [S, H]
    mase: np.ndarray  # [S, H]
    ids: list[str] = field(default_factory=list)

    @property
    def mean_smape(self) -> float:
        return float(self.smape.mean())

    @property
    def mean_mase(self) -> float:
        return float(self.mase.mean())

    def owa(self, naive2: Scores) -> float:
        return 0.5 * (self.mean_smape / naive2.mean_smape + self.mean_mase / naive2.mean_mase)

    def series_owa(self, naive2: Scores) -> np.ndarray:
        """Per-series OWA against the competition-wide Naive2 means (for ranking series)."""
        return 0.5 * (self.smape.mean(1) / naive2.mean_smape + self.mase.mean(1) / naive2.mean_mase)


def score(actuals: dict[str, np.ndarray], forecasts: dict[str, np.ndarray],
          insamples: dict[str, np.ndarray]) -> Scores:
    """The M4 metrics of ``forecasts`` (per series id) against ``actuals``."""
    ids = list(actuals)
    s = np.stack([smape(actuals[k], forecasts[k]) for k in ids])
    m = np.stack([np.abs(actuals[k] - forecasts[k]) / mase_scale(insamples[k]) for k in ids])
    return Scores(s, m, ids)


def benchmark_forecasts(train: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{method: {id: forecast}} for the competition's benchmarks."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, values in train.items():
        for name, forecast in m4_benchmarks(values).items():
            out.setdefault(name, {})[key] = forecast
    return out


# -- the global model -------------------------------------------------------------------------


def parse_value(text: str):
    """A ``--set`` value as YAML reads it (``64`` -> 64, ``none`` -> None, ``segment``)."""
    value = yaml.safe_load(text)
    return None if value == "none" else value


def build_config(overrides: list[str], verbose: int) -> dict:
    """The settings ``forecast train --horizon 48`` passes, with ``--set KEY=VALUE`` applied
    (``lookback=168``, ``model.units=64``, ``train.learning_rate=0.003``)."""
    config: dict = {"horizon": HORIZON, "model": {}, "train": {"verbose": verbose}}
    for item in overrides:
        if "=" not in item:
            raise SystemExit(f"--set {item}: expected KEY=VALUE, e.g. model.units=64")
        key, text = item.split("=", 1)
        where = config
        *groups, name = key.strip().split(".")
        for group in groups:
            where = where.setdefault(group, {})
        where[name] = parse_value(text)
    return config


def split_validation(frame):
    """The training parts without their last ``HORIZON`` rows (those are the validation
    targets): what the model is fitted on."""
    from forecast.data.dataset import carry

    position = frame.groupby(level=0, sort=False).cumcount(ascending=False)
    return carry(frame, frame[position.to_numpy() >= HORIZON])


def with_context(frame, rows: int):
    """The last ``rows`` rows of every series (lookback context + validation targets)."""
    from forecast.data.dataset import carry

    return carry(frame, frame.groupby(level=0, sort=False).tail(rows))


def forecasts_of(frame) -> dict[str, np.ndarray]:
    """``Forecaster.predict``'s long-format output as ``{id: 48 values}``."""
    return {str(key): group["y"].to_numpy(dtype=np.float64)
            for key, group in frame.groupby(frame.columns[0], sort=False)}


def train_global(full_train, config: dict):
    """Trains the global model as ``forecast train --id-col`` does (``with_lookback`` from the
    median training rows, then ``Forecaster.fit``), on the training parts without their last
    48 rows, with those 48 (plus one lookback of context) as the validation split.

    Returns:
        ``(forecaster, training seconds, the frame it was fitted on, the validation frame)``.
    """
    from forecast.data.dataset import describe
    from forecast.forecaster import Forecaster, with_lookback

    fit_part = split_validation(full_train)
    rows = int(fit_part.groupby(level=0).size().median())
    resolved, reason = with_lookback(config, describe(fit_part).freq, rows)
    # the settings the model will use (global defaults included), as check_before_training
    # reads them, so that the validation split carries exactly one lookback of context
    probe = Forecaster(resolved, lookback_reason=reason)
    probe._describe(fit_part)
    val = with_context(full_train, probe.config.lookback + HORIZON)
    began = time.perf_counter()
    forecaster = Forecaster(resolved, lookback_reason=reason).fit(fit_part, val)
    seconds = time.perf_counter() - began
    return forecaster, seconds, fit_part, val


def model_forecasts(forecaster, fit_part, full_train) -> tuple[dict, dict]:
    """(validation forecasts from the fit part, test forecasts from the full training part)."""
    return forecasts_of(forecaster.predict(fit_part)), forecasts_of(forecaster.predict(full_train))


# -- printing ---------------------------------------------------------------------------------


def interval_scores(forecaster, full_train, test: dict[str, np.ndarray],
                    train: dict[str, np.ndarray], levels) -> dict[str, tuple]:
    """``{level label: (test coverage, MSIS, per-series coverage)}`` of a calibrated
    forecaster's intervals.

    MSIS (the M4 interval score): per series and step ``(hi - lo) + 2/a (lo - y)+ + 2/a
    (y - hi)+`` with ``a = 1 - level``, divided by the series' MASE scale, averaged. The
    per-series coverage (one value per series, over its 48 test points) shows how evenly the
    pooled coverage is shared.
    """
    from forecast.evaluation.intervals import level_label

    frame = forecaster.predict(full_train)
    out = {}
    for level in levels:
        label, alpha = level_label(level), 1.0 - level
        inside, scores = [], []
        for key, group in frame.groupby(frame.columns[0], sort=False):
            y = test[str(key)]
            lo, hi = group[f"y_lo_{label}"].to_numpy(), group[f"y_hi_{label}"].to_numpy()
            inside.append((lo <= y) & (y <= hi))
            winkler = (hi - lo) + 2 / alpha * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))
            scores.append(winkler / mase_scale(train[str(key)]))
        out[label] = (float(np.mean(inside)), float(np.mean(scores)),
                      np.array([np.mean(x) for x in inside]))
    return out


def table(rows: list[tuple[str, Scores | tuple]], naive2: Scores, title: str) -> list[str]:
    """Lines of a sMAPE / MASE / OWA table (a tuple row holds published numbers)."""
    lines = [title, f"{'method':<34}{'sMAPE':>9}{'MASE':>9}{'OWA':>8}"]
    for name, result in rows:
        if isinstance(result, Scores):
            lines.append(f"{name:<34}{result.mean_smape:>9.3f}{result.mean_mase:>9.3f}"
                         f"{result.owa(naive2):>8.3f}")
        else:
            s, m, o = result
            lines.append(f"{name:<34}{s:>9.3f}{m:>9.3f}{o:>8.3f}")
    return lines


def per_step(rows: list[tuple[str, Scores]]) -> list[str]:
    """Lines of sMAPE / MASE at the steps ``STEPS``."""
    lines = ["per step (sMAPE / MASE at steps " + ", ".join(map(str, STEPS)) + ")",
             f"{'method':<24}" + "".join(f"{'h=' + str(h):>14}" for h in STEPS)]
    for name, result in rows:
        lines.append(f"{name:<24}" + "".join(
            f"{result.smape[:, h - 1].mean():>7.2f}/{result.mase[:, h - 1].mean():<6.2f}"
            for h in STEPS))
    return lines


def per_series(model: Scores, snaive: Scores, naive2: Scores) -> list[str]:
    """Lines for the best, median and worst series and the count beating seasonal naive."""
    owa = model.series_owa(naive2)
    order = np.argsort(owa)
    picks = [("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])]
    lines = ["per series (OWA against the overall Naive2 means)"]
    for label, k in picks:
        lines.append(f"  {label:<7}{model.ids[k]:<7} sMAPE {model.smape[k].mean():7.2f}  MASE "
                     f"{model.mase[k].mean():6.3f}  OWA {owa[k]:.3f}  (sNaive sMAPE "
                     f"{snaive.smape[k].mean():.2f}, MASE {snaive.mase[k].mean():.3f})")
    beats = int(np.sum(model.mase.mean(1) < snaive.mase.mean(1)))
    lines.append(f"  {beats} of {len(owa)} series beat seasonal naive on MASE "
                 f"({int(np.sum(model.smape.mean(1) < snaive.smape.mean(1)))} on sMAPE)")
    return lines


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="Only the baselines and the Naive2 protocol check (fast).")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--series", type=int, default=None,
                        help="Use the first N series only (quick experiments).")
    parser.add_argument("--stride", type=int, default=1,
                        help="Use every K-th series (before --series): a spread-out subset.")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="Override a forecaster setting: lookback=168, setup=segment, "
                             "model.units=64, train.epochs=5 (repeatable).")
    parser.add_argument("--val-only", action="store_true",
                        help="Score the validation 48 only (choose settings without the test).")
    parser.add_argument("--interval", type=float, action="append", default=[],
                        metavar="LEVEL",
                        help="Also calibrate conformal intervals at LEVEL on the validation 48 "
                             "and score them on the test 48 (repeatable).")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--track", action=argparse.BooleanOptionalAction, default=True,
                        help="Log the model run to MLflow (experiment m4-hourly-benchmark).")
    args = parser.parse_args()

    began = time.perf_counter()
    train = read_wide(args.data_dir / "Hourly-train.csv")
    test = read_wide(args.data_dir / "Hourly-test.csv")
    if args.series or args.stride > 1:
        keep = list(train)[:: args.stride][: args.series]
        train, test = {k: train[k] for k in keep}, {k: test[k] for k in keep}
    fit_part = {k: v[:-HORIZON] for k, v in train.items()}
    val_actual = {k: v[-HORIZON:] for k, v in train.items()}

    bench_test = {name: score(test, f, train) for name, f in benchmark_forecasts(train).items()}
    bench_val = {name: score(val_actual, f, fit_part)
                 for name, f in benchmark_forecasts(fit_part).items()}
    naive2, naive2_val = bench_test["Naive2"], bench_val["Naive2"]
    print(f"M4 Hourly: {len(train)} series, horizon {HORIZON}, season {SEASON}; "
          f"benchmarks in {time.perf_counter() - began:.1f} s")
    published = PUBLISHED["Naive2"]
    check = (round(naive2.mean_smape, 2) == round(published[0], 2)
             and round(naive2.mean_mase, 2) == round(published[1], 2))
    if len(train) == 414:
        print(f"protocol check: Naive2 sMAPE {naive2.mean_smape:.3f} (published "
              f"{published[0]}), MASE {naive2.mean_mase:.3f} ({published[1]}): "
              f"{'ok' if check else 'MISMATCH'}")
    if args.check:
        for line in table([(n, bench_test[n]) for n in ("Naive2", "SES", "Naive", "sNaive")]
                          + [(f"published {n}", v) for n, v in PUBLISHED.items()], naive2,
                          "\ntest part (the competition's 48)"):
            print(line)
        verdict = ("reproduces" if check else "DOES NOT reproduce") if len(train) == 414 \
            else f"(on {len(train)} series, not comparable with)"
        print(f"headline: Naive2 {verdict} the published "
              f"18.383 / 2.395 ({naive2.mean_smape:.3f} / {naive2.mean_mase:.3f}); seasonal "
              f"naive OWA {bench_test['sNaive'].owa(naive2):.3f}, SES "
              f"{bench_test['SES'].owa(naive2):.3f}")
        return

    with tempfile.TemporaryDirectory(prefix="m4-") as tmp:
        full_train = to_long(train, Path(tmp), "Hourly-train-long")
    config = build_config(args.overrides, args.verbose)

    def run():
        forecaster, seconds, fit_frame, val_frame = train_global(full_train, config)
        if args.interval:
            forecaster.calibrate(val_frame, args.interval)
        val_fc, test_fc = model_forecasts(forecaster, fit_frame, full_train)
        ours = {"model": (score(val_actual, val_fc, fit_part), score(test, test_fc, train))}
        for name in ("naive", "seasonal_naive", "linear"):
            if name in forecaster.baselines:
                baseline = forecaster.as_baseline(name)
                v, t = model_forecasts(baseline, fit_frame, full_train)
                ours[name] = (score(val_actual, v, fit_part), score(test, t, train))
        return forecaster, seconds, ours

    if args.track:
        import mlflow

        from forecast.tracking.mlflow import tracked_run

        with tracked_run(f"m4-hourly-{len(train)}", experiment="m4-hourly-benchmark",
                         tags={"benchmark": "m4-hourly"}):
            forecaster, seconds, ours = run()
            mlflow.log_params({"series": len(train), "overrides": " ".join(args.overrides),
                               "config": yaml.safe_dump(forecaster.resolved.flat())[:6000]})
            model_val, model_test = ours["model"]
            metrics = {"val_smape": model_val.mean_smape, "val_mase": model_val.mean_mase,
                       "val_owa": model_val.owa(naive2_val), "seconds": seconds,
                       "epochs": forecaster.fit_result.epochs_run}
            if not args.val_only:
                metrics.update(test_smape=model_test.mean_smape, test_mase=model_test.mean_mase,
                               test_owa=model_test.owa(naive2))
            mlflow.log_metrics(metrics)
    else:
        forecaster, seconds, ours = run()

    settings = forecaster.resolved
    c = settings.config
    described = (f"{c.setup} {c.model.cell} {c.model.units} units, lookback {c.lookback}, "
                 f"norm {c.model.instance_norm}, batch {c.batch_size}, lr "
                 f"{c.train.learning_rate:g}, calendar {c.calendar}"
                 + (f", blend a = {forecaster.blend.weight:g}" if forecaster.blend else ""))
    fit = forecaster.fit_result
    print(f"\nglobal model: {described}; {fit.epochs_run} epochs (best {fit.best_epoch}) in "
          f"{seconds:.0f} s")
    names = {"model": "forecast global model (ours)", "naive": "our naive baseline",
             "seasonal_naive": "our seasonal naive baseline", "linear": "our linear baseline"}
    rows_val = [(names[k], v[0]) for k, v in ours.items()] + [
        (f"M4 {n}", bench_val[n]) for n in ("Naive2", "SES", "sNaive", "Naive")]
    for line in table(rows_val, naive2_val, "\nvalidation (last 48 of each training part)"):
        print(line)
    model_val = ours["model"][0]
    if args.val_only:
        print(f"headline: M4 Hourly ({len(train)} series) val sMAPE {model_val.mean_smape:.3f} "
              f"MASE {model_val.mean_mase:.3f} OWA {model_val.owa(naive2_val):.3f} (sNaive "
              f"{bench_val['sNaive'].owa(naive2_val):.3f}); {described}; {fit.epochs_run} epochs "
              f"(best {fit.best_epoch}) in {seconds:.0f} s (test not scored)")
        return
    rows_test = [(names[k], v[1]) for k, v in ours.items()] + [
        (f"M4 {n}", bench_test[n]) for n in ("Naive2", "SES", "sNaive", "Naive")] + [
        (f"published {n}", v) for n, v in PUBLISHED.items()]
    for line in table(rows_test, naive2, "\ntest (the competition's 48)"):
        print(line)
    model_test = ours["model"][1]
    print()
    for line in per_step([("ours", model_test), ("sNaive", bench_test["sNaive"]),
                          ("Naive2", naive2)]):
        print(line)
    print()
    for line in per_series(model_test, bench_test["sNaive"], naive2):
        print(line)
    if args.interval:
        print()
        print("| intervals (test 48) | " + " | ".join(
            f"coverage {x:g} | MSIS {x:g}" for x in sorted(args.interval)) + " |")
        print("|---|" + "---|---|" * len(args.interval))
        for name in ("model", "naive", "seasonal_naive", "linear"):
            if name != "model" and name not in forecaster.baselines:
                continue
            who = forecaster if name == "model" else forecaster.as_baseline(name)
            scores = interval_scores(who, full_train, test, train, args.interval)
            print(f"| {names[name]} | " + " | ".join(
                f"{c:.3f} | {m:.2f}" for c, m, _ in scores.values()) + " |")
            if name == "model":
                spread = {label: np.percentile(each, [10, 50, 90])
                          for label, (_, _, each) in scores.items()}
        print(f"(calibrated on {forecaster.intervals.n} validation windows, one per series)")
        print("per-series coverage of our model (10th / 50th / 90th percentile over the "
              "series): " + "; ".join(f"{label} %: {p[0]:.3f} / {p[1]:.3f} / {p[2]:.3f}"
                                      for label, p in spread.items()))
    print(f"headline: M4 Hourly ({len(train)} series) test sMAPE {model_test.mean_smape:.3f} "
          f"MASE {model_test.mean_mase:.3f} OWA {model_test.owa(naive2):.3f} (seasonal naive "
          f"{bench_test['sNaive'].owa(naive2):.3f}, ES-RNN 0.440); val OWA "
          f"{model_val.owa(naive2_val):.3f}; trained in {seconds:.0f} s, {described}")


if __name__ == "__main__":
    main()
