"""The forecasting setups: how recurrent layers turn a lookback into a horizon.

Every setup is built from `forecast.layers` (LSTM, peephole LSTM, GRU) and maps normalised
inputs to normalised forecasts; `forecast.models.builder.build_model` wraps it with the
instance normalisation, channel independence and linear shortcut.

| setup         | what it does                                                                 |
|---------------|------------------------------------------------------------------------------|
| many_to_one   | encoder over the lookback -> last output -> Dense to all horizon steps        |
| one_to_many   | encoder's last output repeated over the horizon -> decoder -> per-step head   |
| seq2seq       | encoder states initialise a decoder that reads the future covariates and a    |
|               | learned step embedding at each horizon step -> per-step head                  |
| synced        | one prediction per step (next value), warmed up on the lookback, then rolled  |
|               | out autoregressively over the horizon feeding predictions back (FeedBack)     |

`dropout` is applied (as a Dropout layer) to the output sequence of every recurrent layer,
the same way in every setup, including each step of the synced rollout.
"""

from __future__ import annotations

from typing import ClassVar

import keras
import tensorflow as tf

from forecast.layers import GRU, LSTM
from forecast.models.heads import anchor_index, make_head
from forecast.options import CELLS, suggest


def make_recurrent(cell: str, units: int, *, return_sequences=False, return_state=False,
                   name=None):
    """One of our recurrent layers: ``"lstm"``, ``"peephole"`` (LSTM with peepholes), ``"gru"``.

    Raises:
        ConfigError: an unknown cell.
    """
    if cell == "gru":
        return GRU(units, return_sequences=return_sequences, return_state=return_state,
                   name=name)
    if cell in ("lstm", "peephole"):
        return LSTM(units, peephole=cell == "peephole", return_sequences=return_sequences,
                    return_state=return_state, name=name)
    raise suggest("cell", cell, CELLS)


def _dropout(rate, seed, name):
    return keras.layers.Dropout(rate, seed=seed, name=name) if rate > 0 else None


class Setup:
    """Base of the setups: builds a forecast (B, H, T[, Q]) from symbolic inputs.

    Args:
        options: a `ModelOptions` (cell, units, layers, dropout, quantiles, seed).
        horizon: forecast steps H.
        n_targets: targets T: the first T channels of the past input.
        n_channels: with channel independence, the channels folded into the batch (C of
            (B·C, L, 1)); 1 otherwise.
    """

    NAME: ClassVar[str] = ""
    SUPPORTS_FUTURE_COVARIATES: ClassVar[bool] = True
    SUPPORTS_PAST_COVARIATES: ClassVar[bool] = True
    #: whether the setup takes calendar features (on when ``calendar`` is left unset)
    READS_CALENDAR: ClassVar[bool] = True
    #: whether per-series static covariates and the id embedding can be fed to the network
    SUPPORTS_STATIC_COVARIATES: ClassVar[bool] = True
    AUTOREGRESSIVE: ClassVar[bool] = False

    def __init__(self, options, horizon: int, n_targets: int, n_channels: int = 1):
        self.options = options
        self.horizon = horizon
        self.n_targets = n_targets
        self.n_channels = n_channels  # channels sharing the model (channel independence)

    def __call__(self, past, future=None):
        """past (B, L, F) and future (B, H, Fu) or None -> forecast (B, H, T[, Q])."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------

    def _rnn(self, name, **kwargs):
        return make_recurrent(self.options.cell, self.options.units, name=name, **kwargs)

    def _drop(self, x, name):
        layer = _dropout(self.options.dropout, self.options.seed, name)
        return x if layer is None else layer(x)

    def _head(self, horizon=None):
        return make_head(self.n_targets, self.options.quantiles, horizon=horizon, name="head")

    def _encode(self, past, return_state=False):
        """Stacked encoder: the last layer's final output (B, U), and each layer's states."""
        x, states = past, []
        n = self.options.layers
        for k in range(n):
            last = k == n - 1
            out = self._rnn(f"encoder_{k}", return_sequences=not last,
                            return_state=return_state)(x)  # [B, L, D] -> [B, L, U] or [B, U]
            if return_state:
                x, layer_states = out[0], list(out[1:])
                states.append(layer_states)
            else:
                x = out
            x = self._drop(x, f"encoder_dropout_{k}")
        return x, states

    def _decode(self, x, initial_states=None):
        """Stacked decoder over the horizon: (B, H, D) -> (B, H, U)."""
        for k in range(self.options.layers):
            layer = self._rnn(f"decoder_{k}", return_sequences=True)
            if initial_states is None:
                x = layer(x)  # [B, H, D] -> [B, H, U]
            else:
                x = layer(x, initial_state=initial_states[k])  # [B, H, D] -> [B, H, U]
            x = self._drop(x, f"decoder_dropout_{k}")
        return x


class ManyToOne(Setup):
    """Single shot: encoder -> last output -> Dense to every (step, target) at once.

    Future covariates, when given, are flattened and concatenated with the encoding.
    """

    NAME = "many_to_one"

    def __call__(self, past, future=None):
        h, _ = self._encode(past)  # [B, L, F] -> [B, U]
        if future is not None:
            flat = keras.layers.Flatten(name="future_flat")(future)  # [B, H, Fu] -> [B, H·Fu]
            h = keras.layers.Concatenate(name="with_future")([h, flat])  # [B, U + H·Fu]
        return self._head(horizon=self.horizon)(h)  # [B, U] -> [B, H, T(, Q)]


class OneToMany(Setup):
    """One vector to a sequence: the encoder's last output, repeated over the horizon, is
    unrolled by a decoder (return_sequences) into the steps; a per-step head reads them.

    Future covariates, when given, are concatenated with the repeated vector at each step.
    """

    NAME = "one_to_many"

    def __call__(self, past, future=None):
        h, _ = self._encode(past)  # [B, L, F] -> [B, U]
        x = keras.layers.RepeatVector(self.horizon, name="repeat")(h)  # [B, U] -> [B, H, U]
        if future is not None:
            x = keras.layers.Concatenate(name="with_future")([x, future])  # [B, H, U + Fu]
        x = self._decode(x)  # [B, H, D] -> [B, H, U]
        return self._head()(x)  # [B, H, U] -> [B, H, T(, Q)]


@keras.saving.register_keras_serializable(package="forecast")
class StepEmbedding(keras.layers.Layer):
    """A learned vector per horizon step, tiled over the batch of a reference tensor.

    Args:
        steps: horizon steps.
        dim: size of each step's vector.

    Call arguments:
        reference: any tensor whose first axis is the batch.

    Returns:
        (batch, steps, dim).
    """

    def __init__(self, steps, dim=8, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)
        self.dim = int(dim)

    def build(self, reference_shape):
        self.embedding = self.add_weight(
            shape=(self.steps, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.1),
            name="embedding",
        )
        self.built = True

    def call(self, reference):
        batch = tf.shape(reference)[0]
        return tf.tile(self.embedding[None], [batch, 1, 1])  # [H, E] -> [B, H, E]

    def compute_output_shape(self, reference_shape):
        return (reference_shape[0], self.steps, self.dim)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "dim": self.dim}


class Seq2Seq(Setup):
    """Encoder-decoder: the encoder's final states (per layer) initialise a decoder that runs
    over the horizon; per-step head.

    The decoder reads, at each horizon step, a learned step embedding (`StepEmbedding`, 8
    values per step) concatenated with the known future covariates when the spec has them;
    without future covariates it reads the step embedding alone.
    """

    NAME = "seq2seq"
    STEP_EMBEDDING_DIM: ClassVar[int] = 8

    def __call__(self, past, future=None):
        _, states = self._encode(past, return_state=True)  # per layer: [h(, c)], each [B, U]
        x = StepEmbedding(self.horizon, self.STEP_EMBEDDING_DIM, name="step_embedding")(
            past
        )  # [B, H, E]
        if future is not None:
            x = keras.layers.Concatenate(name="with_future")([future, x])  # [B, H, Fu + E]
        x = self._decode(x, initial_states=states)  # [B, H, D] -> [B, H, U]
        return self._head()(x)  # [B, H, U] -> [B, H, T(, Q)]


@keras.saving.register_keras_serializable(package="forecast")
class SyncedRollout(keras.layers.Layer):
    """Next-step recurrent model run autoregressively over the horizon (the FeedBack model).

    Warm-up: the stacked recurrent layers read the whole lookback (every input channel) and
    their final output predicts the first horizon step. Rollout: each later step feeds the
    previous prediction back (the median for quantile heads) through the same cells
    (`layer.cell`, shared weights), one step at a time. The input of a rollout step has the
    lookback's channel layout: predicted targets, past covariates held at their last observed
    value, and the known future covariates of the previous horizon step.

    Trained end to end through the rollout (closed loop, no teacher forcing on the horizon), so
    training sees the same inputs as forecasting; the warm-up reads the true history.

    Args:
        cell: ``"lstm"``, ``"peephole"`` or ``"gru"``.
        units: size of each recurrent layer.
        layers: stacked recurrent layers.
        horizon: forecast steps H.
        n_targets: targets T (the first T channels of the past input).
        quantiles: None for point forecasts, else the quantile levels.
        dropout: rate of the Dropout after every recurrent layer (every step).
        seed: seed of the dropout.

    Call arguments:
        past: (B, L, F).
        future: (B, H, Fu) known future covariates, or None.

    Returns:
        (B, H, T) or (B, H, T, Q).
    """

    def __init__(self, cell="lstm", units=32, layers=1, horizon=1, n_targets=1, quantiles=None,
                 dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.cell_type = cell
        self.units = int(units)
        self.n_layers = int(layers)
        self.horizon = int(horizon)
        self.n_targets = int(n_targets)
        self.quantiles = None if quantiles is None else tuple(quantiles)
        self.dropout = float(dropout)
        self.seed = seed
        self.rnns = [
            make_recurrent(cell, self.units, return_sequences=True, return_state=True,
                           name=f"recurrent_{k}")
            for k in range(self.n_layers)
        ]
        self.drops = [keras.layers.Dropout(self.dropout, seed=seed, name=f"dropout_{k}")
                      for k in range(self.n_layers)]
        self.head = make_head(self.n_targets, self.quantiles, name="head")

    def build(self, past_shape, future_shape=None):
        steps, width = past_shape[1], past_shape[-1]
        for rnn in self.rnns:
            rnn.build((None, steps, width))
            width = self.units
        self.head.build((None, self.units))
        self.built = True

    def _stack_step(self, x, states, training):
        """One step through the stacked cells: (B, F) -> (B, U) and the new states."""
        new_states = []
        for rnn, drop, layer_states in zip(self.rnns, self.drops, states, strict=True):
            x, s = rnn.cell(x, layer_states, training=training)  # [B, D] -> [B, U]
            x = drop(x, training=training)
            new_states.append(list(s))
        return x, new_states

    def _fed_back(self, y):
        """The value fed back: the point forecast, or the median-most quantile."""
        if self.quantiles is None:
            return y  # [B, T]
        return y[..., anchor_index(self.quantiles)]  # [B, T, Q] -> [B, T]

    def call(self, past, future=None, training=None):
        t = self.n_targets
        n_future = 0 if future is None else future.shape[-1]
        held = past[:, -1, t : past.shape[-1] - n_future]  # [B, P] past covariates, held
        x, states = past, []
        for rnn, drop in zip(self.rnns, self.drops, strict=True):
            out = rnn(x, training=training)  # [B, L, D] -> [[B, L, U], h(, c)]
            x, layer_states = out[0], list(out[1:])
            x = drop(x, training=training)
            states.append(layer_states)
        y = self.head(x[:, -1])  # [B, U] -> [B, T(, Q)]
        predictions = [y]
        for k in range(1, self.horizon):
            parts = [self._fed_back(y), held]  # [B, T], [B, P]
            if future is not None:
                parts.append(future[:, k - 1])  # [B, Fu], known at the previous step
            step_in = tf.concat(parts, axis=-1)  # [B, F]
            h, states = self._stack_step(step_in, states, training)  # [B, F] -> [B, U]
            y = self.head(h)  # [B, U] -> [B, T(, Q)]
            predictions.append(y)
        return tf.stack(predictions, axis=1)  # H x [B, T(, Q)] -> [B, H, T(, Q)]

    def compute_output_shape(self, past_shape, future_shape=None):
        tail = () if self.quantiles is None else (len(self.quantiles),)
        return (past_shape[0], self.horizon, self.n_targets, *tail)

    def get_config(self):
        own = {
            "cell": self.cell_type,
            "units": self.units,
            "layers": self.n_layers,
            "horizon": self.horizon,
            "n_targets": self.n_targets,
            "quantiles": None if self.quantiles is None else list(self.quantiles),
            "dropout": self.dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **own}


class Synced(Setup):
    """Many-to-many synced: a prediction per step, rolled out over the horizon (see
    `SyncedRollout`)."""

    NAME = "synced"
    AUTOREGRESSIVE = True

    def __call__(self, past, future=None):
        o = self.options
        layer = SyncedRollout(
            cell=o.cell, units=o.units, layers=o.layers, horizon=self.horizon,
            n_targets=self.n_targets, quantiles=o.quantiles, dropout=o.dropout, seed=o.seed,
            name="synced_rollout",
        )
        if future is None:
            return layer(past)  # [B, L, F] -> [B, H, T(, Q)]
        return layer(past, future)  # [B, L, F], [B, H, Fu] -> [B, H, T(, Q)]


from forecast.models.segment import Segment  # noqa: E402  (it builds on Setup above)

#: the setup classes by name, in the order of ``forecast.options.SETUPS``
SETUPS: dict[str, type[Setup]] = {
    cls.NAME: cls for cls in (ManyToOne, OneToMany, Seq2Seq, Synced, Segment)
}


def get_setup(name: str) -> type[Setup]:
    """The setup class called `name`.

    Raises:
        ConfigError: an unknown name, with the valid ones and the closest match.
    """
    try:
        return SETUPS[name]
    except (KeyError, TypeError):
        raise suggest("setup", name, tuple(SETUPS)) from None
