"""The typed record of a loaded frame's roles (forecast/data/dataset.py)."""

import pandas as pd

from forecast.data import chronological_split, load_csv
from forecast.data.dataset import SeriesInfo, attach, describe
from forecast.data.scaling import Scaler


def test_load_csv_records_the_roles_and_they_survive_the_transforms(synthetic_csv):
    frame = load_csv(synthetic_csv, targets=["y"], covariates=["x"])
    info = describe(frame)
    assert info == SeriesInfo(targets=("y",), covariates=("x",), freq="h", time_col="date",
                              id_col=None, source=str(synthetic_csv))
    parts = chronological_split(frame, val=0.1, test=0.2, lookback=24)
    scaled = Scaler("standard", columns=["y", "x"]).fit(parts.train).transform(parts.test)
    assert describe(parts.val) == info and describe(scaled) == info


def test_a_frame_without_a_record_is_described_from_itself():
    index = pd.date_range("2024-01-01", periods=10, freq="D", name="day")
    frame = pd.DataFrame({"a": range(10), "b": range(10)}, index=index, dtype=float)
    info = describe(frame)
    assert (info.targets, info.covariates, info.freq, info.time_col) == (("a", "b"), (), "D",
                                                                        "day")
    attach(frame, info.with_(targets=("a",), covariates=("b",)))
    assert describe(frame).covariates == ("b",)
    assert describe(frame * 1.0).targets == ("a",)  # pandas carries the record through math
    # a frame rebuilt from its values has lost the record: described from itself, never None
    rebuilt = pd.DataFrame(frame.to_numpy(), index=frame.index, columns=frame.columns)
    assert (describe(rebuilt).targets, describe(rebuilt).freq) == (("a", "b"), "D")
