"""Hyperparameter search (`forecast tune`): Optuna's TPE sampler and median pruning over a
search space declared as data, every trial an MLflow run nested in one parent run.

``forecast.tuning.space`` (the space and the settings; no TensorFlow, no Optuna) and
``forecast.tuning.search`` (the search itself) are imported where they are used.
"""
