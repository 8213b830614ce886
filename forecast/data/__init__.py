"""The data side: CSV → validated frame → chronological split → scaling → windows.

The names below load on first use (PEP 562), so ``forecast.data.frequency`` and the loader can
be imported without TensorFlow, which only ``forecast.data.windows`` needs.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "load_csv": "io",
    "validate_frame": "io",
    "chronological_split": "split",
    "Split": "split",
    "Scaler": "scaling",
    "calendar_features": "calendar",
    "calendar_feature_names": "calendar",
    "add_calendar_features": "calendar",
    "WindowSpec": "windows",
    "WindowFrames": "windows",
    "make_dataset": "windows",
    "window_targets": "windows",
    "season_for_freq": "frequency",
    "default_lookback": "frequency",
    "lookback_choice": "frequency",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'forecast.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"forecast.data.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_WHERE])
