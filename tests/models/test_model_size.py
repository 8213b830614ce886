"""The parameter count read off the settings equals Keras's count, and too large a network is
refused before a variable is made."""

import pytest

from forecast.data import WindowSpec
from forecast.errors import ModelError
from forecast.models import build_model
from forecast.models.builder import MAX_PARAMETERS, check_model_size, estimate_parameters

CASES = [
    ("many_to_one", {"cell": "lstm", "layers": 2}, ("x",), ("c1", "c2")),
    ("many_to_one", {"cell": "gru", "quantiles": (0.1, 0.5, 0.9)}, (), ()),
    ("one_to_many", {"cell": "peephole", "instance_norm": "revin"}, ("x",), ("c1",)),
    ("seq2seq", {"cell": "gru", "layers": 2, "linear_skip": False}, (), ("c1", "c2")),
    ("seq2seq", {"cell": "lstm", "channel_independent": True, "instance_norm": "last"}, (), ()),
    ("synced", {"cell": "lstm", "layers": 2, "quantiles": (0.2, 0.8)}, ("x",), ("c1",)),
    ("segment", {"cell": "gru", "segment_length": 6}, (), ()),
    ("segment", {"cell": "lstm", "segment_length": 6, "segment_decoder": "recurrent",
                 "quantiles": (0.1, 0.5, 0.9)}, (), ()),
    ("segment", {"cell": "lstm", "segment_length": 6}, (), ("promo",)),
    ("segment", {"cell": "gru", "segment_length": 6, "segment_decoder": "recurrent"}, (),
     ("promo", "price")),
]


@pytest.mark.parametrize("setup, options, covariates, future", CASES)
@pytest.mark.parametrize("targets", [("y",), ("y", "z")])
def test_estimate_equals_keras_count(setup, options, covariates, future, targets):
    if options.get("channel_independent") and covariates:
        pytest.skip("channel independence reads the targets alone")
    spec = WindowSpec(24, 12, targets, covariates, future)
    model = build_model(setup, spec, units=5, **options)
    assert estimate_parameters(setup, spec, units=5, **options) == model.count_params()


def test_lstm_count_by_hand():
    spec = WindowSpec(48, 12, ("y",))
    # LSTM 4·(16·(1 + 16) + 16) = 1152; head 16·12 + 12 = 204; linear skip 48·12 + 12 = 588
    count = estimate_parameters("many_to_one", spec, units=16, instance_norm="none")
    assert count == 1152 + 204 + 588


def test_too_many_parameters_is_a_model_error_naming_units():
    spec = WindowSpec(24, 6, ("y",))
    with pytest.raises(ModelError, match=r"--units/--layers.*model\.units") as info:
        check_model_size("many_to_one", spec, {"units": 10**9})
    assert f"{MAX_PARAMETERS:,}" in str(info.value)
    with pytest.raises(ModelError, match="parameters"):  # build_model refuses it as well
        build_model("seq2seq", spec, units=5000, layers=3)
    assert check_model_size("many_to_one", spec, {"units": 8}) < MAX_PARAMETERS
