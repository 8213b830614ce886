"""Evaluation: metrics (original and scaled units), rolling-origin backtests, plots."""

from forecast.evaluation.backtest import BacktestResult, BaselineEstimator, Fold, backtest
from forecast.evaluation.metrics import (
    compute_metrics,
    coverage,
    evaluate_predictions,
    mae,
    mape,
    mase,
    pinball,
    rmse,
    seasonal_naive_scale,
    smape,
)
from forecast.evaluation.plots import (
    plot_error_by_step,
    plot_forecast,
    plot_training_curves,
    save_figure,
)

__all__ = [
    "mae",
    "rmse",
    "mape",
    "smape",
    "mase",
    "pinball",
    "coverage",
    "seasonal_naive_scale",
    "compute_metrics",
    "evaluate_predictions",
    "backtest",
    "BacktestResult",
    "Fold",
    "BaselineEstimator",
    "plot_forecast",
    "plot_training_curves",
    "plot_error_by_step",
    "save_figure",
]
