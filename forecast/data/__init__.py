"""The data side: CSV → validated frame → chronological split → scaling → windows."""

from forecast.data.calendar import add_calendar_features, calendar_feature_names, calendar_features
from forecast.data.io import load_csv, validate_frame
from forecast.data.scaling import Scaler
from forecast.data.split import Split, chronological_split
from forecast.data.windows import WindowFrames, WindowSpec, make_dataset

__all__ = [
    "load_csv",
    "validate_frame",
    "chronological_split",
    "Split",
    "Scaler",
    "calendar_features",
    "calendar_feature_names",
    "add_calendar_features",
    "WindowSpec",
    "WindowFrames",
    "make_dataset",
]
