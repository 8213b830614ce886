"""GRUCell and GRU (Cho et al. 2014), weights laid out as `keras.layers.GRU(reset_after=True)`.

Equations (gate order z, r, h in every weight; bias rows = input bias, recurrent bias):

    z = σ(x·W_z + b_z + h·U_z + b'_z)
    r = σ(x·W_r + b_r + h·U_r + b'_r)
    h̃ = tanh(x·W_h + b_h + r∘(h·U_h + b'_h))
    h = z∘h_prev + (1 − z)∘h̃

The reset gate applied after the recurrent product ("reset_after") is what cuDNN computes.
"""

import keras
import tensorflow as tf

from forecast.layers import cudnn, fused, loops
from forecast.layers.base import (
    RecurrentLayer,
    check_rate,
    check_units,
)

__all__ = ["GRUCell", "GRU"]


@keras.saving.register_keras_serializable(package="forecast")
class GRUCell(keras.layers.Layer):
    """One step of a GRU; holds the weights of `GRU`.

    Weights: `kernel` (input_dim, 3·units), `recurrent_kernel` (units, 3·units), `bias`
    (2, 3·units) = [input bias, recurrent bias], gate order z, r, h.

    Args:
        units: positive int, size of h.
        activation: candidate activation (default tanh).
        recurrent_activation: gate activation (default sigmoid).
        use_bias: whether the gates have biases.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs dropped (one mask per sequence), in [0, 1).
        recurrent_dropout: fraction of h dropped before the recurrent product, in [0, 1).
        seed: seed of the dropout masks.
        reset_after: must be True (the cuDNN-compatible form); accepted for Keras configs.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: (batch, input_dim). states: [h] with h (batch, units). training: bool.

    Returns:
        (h, [h]).

    Raises:
        ValueError: units not positive, a rate outside [0, 1), or reset_after=False.

    >>> cell = GRUCell(4)
    >>> h, (h,) = cell(tf.zeros((2, 3)), [tf.zeros((2, 4))])
    >>> h.shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        reset_after=True,
        **kwargs,
    ):
        check_units(units)
        check_rate("dropout", dropout)
        check_rate("recurrent_dropout", recurrent_dropout)
        if reset_after is not True:
            raise ValueError(
                "Only `reset_after=True` (the cuDNN-compatible GRU) is supported. "
                f"Received: reset_after={reset_after!r}"
            )
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.reset_after = True
        self.state_size = [units]
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 3 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(2, 3 * self.units),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    def get_initial_state(self, batch_size=None):
        return [tf.zeros(tf.stack([batch_size, self.units]), dtype=self.compute_dtype)]

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        if training and self.dropout > 0:
            inputs = keras.random.dropout(inputs, rate=self.dropout, seed=self.seed_generator)
        h_in = h_prev
        if training and self.recurrent_dropout > 0:
            h_in = keras.random.dropout(
                h_prev, rate=self.recurrent_dropout, seed=self.seed_generator
            )
        x_proj = tf.matmul(inputs, self.kernel)
        inner = tf.matmul(h_in, self.recurrent_kernel)
        if self.use_bias:
            x_proj = x_proj + self.bias[0]
            inner = inner + self.bias[1]
        h = loops.gru_step(x_proj, inner, h_prev, self.activation, self.recurrent_activation)
        return h, [h]

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        own = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "reset_after": True,
        }
        return {**super().get_config(), **own}


_CELL_ARGS = tuple(
    GRUCell.__init__.__code__.co_varnames[1 : GRUCell.__init__.__code__.co_argcount]
)


@keras.saving.register_keras_serializable(package="forecast")
class GRU(RecurrentLayer):
    """Gated recurrent unit layer, a drop-in for `keras.layers.GRU(reset_after=True)`.

    Args:
        units: positive int, size of the output and of the state.
        activation, recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
        seed, reset_after: as in `keras.layers.GRU` (see `GRUCell`).
        return_sequences, return_state, go_backwards, stateful: as in `keras.layers.GRU`.
        implementation: "auto" (cuDNN when it can, else fused), "cudnn" or "fused".
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: (batch, steps, features).
        mask: (batch, steps) booleans, True for steps to use (right padding on cuDNN).
        training: whether dropout applies.
        initial_state: [h] with h (batch, units); zeros (or the carried state) if None.

    Returns:
        (batch, units), or (batch, steps, units) with return_sequences; with return_state
        the list [output, h].

    Raises:
        ValueError: an invalid argument.
        ConfigError: implementation="cudnn" with a configuration cuDNN cannot run; at call
            time, no GPU.

    >>> out, h = GRU(8, return_state=True)(tf.zeros((4, 10, 3)))
    >>> out.shape, h.shape
    (TensorShape([4, 8]), TensorShape([4, 8]))
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        reset_after=True,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        implementation="auto",
        **kwargs,
    ):
        cell = GRUCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            reset_after=reset_after,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="gru_cell",
        )
        super().__init__(
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            implementation=implementation,
            **kwargs,
        )
        self.cell = cell
        self._require_cudnn_possible(implementation)

    def _weights(self):
        cell = self.cell
        bias = None if cell.bias is None else tf.convert_to_tensor(cell.bias)
        return tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel), bias

    def _run_fused(self, x, states, training, mask):
        kernel, recurrent_kernel, bias = self._weights()
        out, h = fused.gru_fused(x, states[0], kernel, recurrent_kernel, bias,
                                 return_sequences=self.return_sequences, mask=mask)
        return out, [h]

    def _run_loop(self, x, mask, states, training):
        cell = self.cell
        kernel, recurrent_kernel, bias = self._weights()
        rec_mask = None
        if training and cell.recurrent_dropout > 0:
            rec_mask = keras.random.dropout(
                tf.ones_like(states[0]), rate=cell.recurrent_dropout, seed=cell.seed_generator
            )
        hs, h = loops.gru_loop(
            x, mask, states[0], kernel, recurrent_kernel, bias,
            activation=cell.activation, recurrent_activation=cell.recurrent_activation,
            recurrent_mask=rec_mask,
        )
        return hs, [h]

    def _run_cudnn(self, x, states, lengths, training):
        kernel, recurrent_kernel, bias = self._weights()
        hs, h = cudnn.gru_cudnn(
            x, states[0], kernel, recurrent_kernel, bias,
            lengths=lengths, go_backwards=self.go_backwards,
        )
        return hs, [h]

    def get_config(self):
        cell_config = self.cell.get_config()
        own = {k: cell_config[k] for k in _CELL_ARGS if k in cell_config}
        return {**super().get_config(), **own}
