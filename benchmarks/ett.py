"""ETTh1 long-horizon benchmark with the standard protocol, beside the published numbers.

Protocol (Informer / Autoformer / PatchTST / DLinear): rows [0, 8640) train, [8640-L, 11520)
val, [11520-L, 14400) test (L = lookback; later rows unused); a StandardScaler fitted on the
train rows only; MSE and MAE on the scaled values, averaged over windows, horizon steps and
channels; stride 1. Setting M: all 7 columns in and predicted; S: OT in, OT predicted. The
published tables drop the last incomplete test batch (batch 32, drop_last=True): both numbers
are printed.

Usage:
    .venv/bin/python benchmarks/ett.py --check              # the Repeat protocol check only
    .venv/bin/python benchmarks/ett.py --setting M --horizon 96 [--lookback 336] [--setup ...]

Every model run is logged to MLflow (experiment "etth1-benchmark"; --no-track to skip).
The last line is the headline.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from forecast.data import Scaler, WindowSpec, chronological_split, load_csv  # noqa: E402
from forecast.evaluation.backtest import window_targets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets" / "ETTh1.csv"
BORDERS = (8640, 11520, 14400)
COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
PUBLISHED = {  # (MSE, MAE) at horizons 96, 192, 336, 720
    "M": {
        "PatchTST/64": [(.370, .400), (.413, .429), (.422, .440), (.447, .468)],
        "DLinear": [(.375, .399), (.405, .416), (.439, .443), (.472, .490)],
        "NLinear": [(.374, .394), (.408, .415), (.429, .427), (.440, .453)],
        "Informer (L=96)": [(.865, .713), (1.008, .792), (1.107, .809), (1.181, .865)],
        "Repeat": [(1.295, .713), (1.325, .733), (1.323, .744), (1.339, .756)],
    },
    "S": {
        "PatchTST/42": [(.055, .179), (.071, .205), (.081, .225), (.087, .232)],
        "DLinear": [(.056, .180), (.071, .204), (.098, .244), (.189, .359)],
        "NLinear": [(.053, .177), (.069, .204), (.081, .226), (.080, .226)],
    },
}
HORIZONS = (96, 192, 336, 720)


def load(setting: str):
    """The ETTh1 frame with the setting's targets."""
    targets = list(COLUMNS) if setting == "M" else ["OT"]
    return load_csv(DATA, time_col="date", targets=targets)


def scores(y_true_z: np.ndarray, y_pred_z: np.ndarray, batch: int = 32) -> dict:
    """MSE/MAE over all windows and with the last incomplete batch of 32 dropped."""
    err = y_pred_z - y_true_z
    kept = (len(err) // batch) * batch
    return {
        "mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))),
        "mse_drop_last": float(np.mean(err[:kept] ** 2)),
        "mae_drop_last": float(np.mean(np.abs(err[:kept]))),
        "windows": int(len(err)), "windows_drop_last": int(kept),
    }


def repeat_scores(setting: str, horizon: int, lookback: int = 96) -> dict:
    """The Repeat baseline (last observed value for every step) under the protocol."""
    frame = load(setting)
    parts = chronological_split(frame, borders=BORDERS, lookback=lookback)
    targets = list(frame.attrs["targets"])
    scaler = Scaler("standard", columns=targets).fit(parts.train)
    test_z = scaler.transform(parts.test)
    spec = WindowSpec(lookback, horizon, tuple(targets))
    y_true = window_targets(test_z, spec)  # [N, H, C]
    starts = spec.window_starts(test_z)
    last = test_z[targets].to_numpy()[starts + lookback - 1]  # [N, C]
    return scores(y_true, np.repeat(last[:, None, :], horizon, axis=1))


def model_scores(setting: str, horizon: int, config: dict, *, track: bool = False) -> dict:
    """Trains a forecaster under the protocol (val for early stopping) and scores the test part."""
    from forecast.forecaster import Forecaster
    from forecast.tracking.mlflow import tracked_run

    frame = load(setting)
    lookback = config["lookback"]
    parts = chronological_split(frame, borders=BORDERS, lookback=lookback)
    full = {**config, "horizon": horizon}
    began = time.perf_counter()

    def run():
        forecaster = Forecaster(full).fit(parts.train, parts.val)
        seconds = time.perf_counter() - began
        y_true, y_pred = forecaster.predict_windows(parts.test)
        targets = list(forecaster.spec.targets)
        result = scores(forecaster.scaler.transform_array(y_true, targets),
                        forecaster.scaler.transform_array(y_pred, targets))
        result["seconds"] = seconds
        result["epochs"] = forecaster.fit_result.epochs_run
        val_true, val_pred = forecaster.predict_windows(parts.val)
        result["val_mse"] = scores(forecaster.scaler.transform_array(val_true, targets),
                                   forecaster.scaler.transform_array(val_pred, targets))["mse"]
        return result

    if not track:
        return run()
    import mlflow

    with tracked_run(f"etth1-{setting}-{horizon}", experiment="etth1-benchmark",
                     tags={"benchmark": "etth1", "setting": setting}):
        mlflow.log_params({"setting": setting, "horizon": horizon,
                           "config": yaml.safe_dump(full)[:6000]})
        result = run()
        mlflow.log_metrics({k: v for k, v in result.items() if isinstance(v, int | float)})
    return result


def linear_scores(setting: str, horizon: int, lookback: int) -> dict:
    """The NLinear-style Ridge baseline of forecast.models.baselines under the protocol."""
    from forecast.data import make_dataset
    from forecast.models.baselines import make_baseline

    frame = load(setting)
    parts = chronological_split(frame, borders=BORDERS, lookback=lookback)
    targets = list(frame.attrs["targets"])
    scaler = Scaler("standard", columns=targets).fit(parts.train)
    spec = WindowSpec(lookback, horizon, tuple(targets))
    began = time.perf_counter()
    model = make_baseline("linear").fit(
        make_dataset(scaler.transform(parts.train), spec, batch_size=256), spec)
    seconds = time.perf_counter() - began
    test_z = scaler.transform(parts.test)
    y_pred = model.predict(make_dataset(test_z, spec, batch_size=256))
    result = scores(window_targets(test_z, spec), y_pred)
    result["seconds"] = seconds
    return result


def default_config(setting: str, lookback: int | None = None) -> dict:
    """The forecaster settings of ``pipelines/etth1.yaml`` (chosen on the validation split)."""
    from forecast.pipelines import load_pipeline

    config = load_pipeline(ROOT / "pipelines" / "etth1.yaml").forecaster_config()
    if lookback:
        config["lookback"] = lookback
    if setting == "S":  # one channel: nothing to make independent
        config["model"]["channel_independent"] = False
    config["train"]["verbose"] = 2
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Only the Repeat protocol check.")
    parser.add_argument("--setting", choices=("M", "S"), default="M")
    parser.add_argument("--horizon", type=int, nargs="+", default=[96])
    parser.add_argument("--lookback", type=int, default=None, help="Default: the pipeline's.")
    parser.add_argument("--units", type=int, default=None, help="Override the pipeline's units.")
    parser.add_argument("--lr", type=float, default=None, help="Override the learning rate.")
    parser.add_argument("--norm", default=None, help="Override instance_norm (revin, last).")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--track", action=argparse.BooleanOptionalAction, default=True,
                        help="Log each model run to MLflow (experiment etth1-benchmark).")
    parser.add_argument("--setup", default=None, help="Override the setup (e.g. seq2seq).")
    parser.add_argument("--cell", default=None, help="Override the cell (lstm, peephole, gru).")
    args = parser.parse_args()

    print("protocol check: Repeat, ETTh1-M, drop_last batch 32 (published in parentheses)")
    ok = True
    for k, horizon in enumerate(HORIZONS):
        got = repeat_scores("M", horizon)
        mse, mae = PUBLISHED["M"]["Repeat"][k]
        match = round(got["mse_drop_last"], 3) == mse and round(got["mae_drop_last"], 3) == mae
        ok &= match
        print(f"  H={horizon:<4} MSE {got['mse_drop_last']:.4f} ({mse})  "
              f"MAE {got['mae_drop_last']:.4f} ({mae})  all windows MSE {got['mse']:.4f}  "
              f"{'ok' if match else 'MISMATCH'}")
    if args.check:
        print(f"headline: Repeat protocol check {'reproduces' if ok else 'DOES NOT reproduce'} "
              "the published ETTh1-M numbers to 3 decimals")
        return

    config = default_config(args.setting, args.lookback)
    if args.epochs:
        config["train"]["epochs"] = args.epochs
    if args.units:
        config["model"]["units"] = args.units
    if args.lr:
        config["train"]["learning_rate"] = args.lr
    if args.setup:
        config["setup"] = args.setup
    if args.cell:
        config["model"]["cell"] = args.cell
    if args.norm:
        config["model"]["instance_norm"] = args.norm
    rows = []
    for horizon in args.horizon:
        k = HORIZONS.index(horizon) if horizon in HORIZONS else None
        ours = model_scores(args.setting, horizon, config, track=args.track)
        linear = linear_scores(args.setting, horizon, config["lookback"])
        rows.append((horizon, ours, linear, k))
    print(f"\nETTh1-{args.setting}, lookback {config['lookback']}, test MSE / MAE "
          "(all windows | drop_last 32)")
    print(f"{'model':<28}{'H':>5}{'MSE':>9}{'MAE':>9}{'MSE dl':>9}{'MAE dl':>9}{'seconds':>9}")
    for horizon, ours, linear, k in rows:
        print(f"{'forecast LSTM (ours)':<28}{horizon:>5}{ours['mse']:>9.4f}{ours['mae']:>9.4f}"
              f"{ours['mse_drop_last']:>9.4f}{ours['mae_drop_last']:>9.4f}"
              f"{ours['seconds']:>9.0f}   val MSE {ours['val_mse']:.4f}, {ours['epochs']} epochs")
        print(f"{'linear baseline (Ridge)':<28}{horizon:>5}{linear['mse']:>9.4f}"
              f"{linear['mae']:>9.4f}{linear['mse_drop_last']:>9.4f}"
              f"{linear['mae_drop_last']:>9.4f}{linear['seconds']:>9.1f}")
        if k is not None:
            for name, values in PUBLISHED[args.setting].items():
                mse, mae = values[k]
                print(f"{'  published ' + name:<28}{horizon:>5}{'':>18}{mse:>9.3f}{mae:>9.3f}")
    horizon, ours, _, _ = rows[0]
    print(f"headline: ETTh1-{args.setting} H={horizon} forecast LSTM test MSE "
          f"{ours['mse_drop_last']:.3f} (drop_last) / {ours['mse']:.3f} (all windows), "
          f"{ours['seconds']:.0f} s on this machine")


if __name__ == "__main__":
    main()
