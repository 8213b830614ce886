"""The static-covariate layers: embedding, insertion into the lookback, the parameter count,
and a save/load round trip with Keras ``safe_mode=True``."""

import keras
import numpy as np
import pytest

from forecast.data import WindowSpec
from forecast.errors import ConfigError
from forecast.models import build_model
from forecast.models.builder import estimate_parameters
from forecast.models.static import StaticEmbedding, WithStatic, embedding_size


def _spec(**kwargs):
    return WindowSpec(24, 6, ("y",), ("x",), ("promo",), static_covariates=("region", "size"),
                      static_sizes=(3, 0), static_dims=(2, 1), **kwargs)


def test_layers_embed_and_insert_after_the_past_covariates():
    layer = StaticEmbedding([3, 0], [2, 1])
    out = np.asarray(layer(np.array([[2.0, 0.5], [0.0, -1.0]], "float32")))
    table = np.asarray(layer.tables[0])
    np.testing.assert_allclose(out[:, :2], table[[2, 0]])
    np.testing.assert_allclose(out[:, 2], [0.5, -1.0])
    past = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)
    joined = np.asarray(WithStatic(2)([past, out]))  # y, x | static (3) | promo
    assert joined.shape == (2, 4, 6)
    np.testing.assert_array_equal(joined[:, :, :2], past[:, :, :2])
    np.testing.assert_array_equal(joined[:, :, 5], past[:, :, 2])
    np.testing.assert_allclose(joined[1, 3, 2:5], out[1])
    assert [embedding_size(v) for v in (1, 2, 3, 10, 100)] == [1, 1, 2, 5, 8]
    with pytest.raises(ConfigError, match="`sizes` and `dims`"):
        StaticEmbedding([3], [2, 1])


@pytest.mark.parametrize("setup", ["many_to_one", "one_to_many", "seq2seq", "synced"])
def test_every_recurrent_setup_takes_static_inputs_and_round_trips(setup, tmp_path):
    spec = _spec()
    model = build_model(setup, spec, units=4, seed=0)
    assert [t.name for t in model.inputs] == ["past", "future", "static"]
    assert estimate_parameters(setup, spec, units=4) == model.count_params()
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, 24, 3)).astype("float32"),
              rng.normal(size=(3, 6, 1)).astype("float32"),
              np.array([[0, 1.0], [1, 0.0], [2, -1.0]], "float32")]
    before = np.asarray(model(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), before, atol=1e-6)
    # the static input changes the forecast
    other = [inputs[0], inputs[1], inputs[2][[1, 2, 0]]]
    assert np.abs(np.asarray(model(other)) - before).max() > 1e-4


def test_segment_and_channel_independence_refuse_static_inputs():
    with pytest.raises(ConfigError, match="setup 'segment' reads the targets alone.*--static"):
        build_model("segment", WindowSpec(24, 6, ("y",), static_covariates=("r",),
                                          static_sizes=(2,), static_dims=(1,)),
                    segment_length=6)
    with pytest.raises(ConfigError, match="channel_independent=True .* static"):
        build_model("many_to_one", WindowSpec(24, 6, ("y", "z"), static_covariates=("r",),
                                              static_sizes=(2,), static_dims=(1,)),
                    channel_independent=True)
    with pytest.raises(ConfigError, match="one entry per static covariate"):
        WindowSpec(24, 6, ("y",), static_covariates=("r",))
