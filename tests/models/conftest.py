"""Fixtures shared by the model tests."""

import pytest

from forecast.data import load_csv


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """A 480-row synthetic CSV with one target ``y``: ``(path, loaded frame)``."""
    from tests.conftest import synthetic_frame

    path = tmp_path_factory.mktemp("data") / "s.csv"
    synthetic_frame(480).to_csv(path, index=False)
    return path, load_csv(path, targets=["y"])
