"""LSTMCell and LSTM (optionally with peepholes), weights laid out as in `keras.layers.LSTM`.

Equations (gate order i, f, c, o in every weight):

    i = σ(x·W_i + h·U_i + b_i [+ p_i∘c_prev])
    f = σ(x·W_f + h·U_f + b_f [+ p_f∘c_prev])
    c̃ = tanh(x·W_c + h·U_c + b_c)
    c = f∘c_prev + i∘c̃
    o = σ(x·W_o + h·U_o + b_o [+ p_o∘c])
    h = o∘tanh(c)

The bracketed peephole terms (Gers & Schmidhuber 2000) are used with ``peephole=True``.
"""

import keras
import tensorflow as tf

from forecast.layers import cudnn, fused, loops
from forecast.layers.base import (
    RecurrentLayer,
    check_rate,
    check_units,
)

__all__ = ["LSTMCell", "LSTM"]


@keras.saving.register_keras_serializable(package="forecast")
class LSTMCell(keras.layers.Layer):
    """One step of an LSTM; holds the weights of `LSTM`.

    Usable on its own or inside `keras.layers.RNN`. Weights: `kernel` (input_dim, 4·units),
    `recurrent_kernel` (units, 4·units), `bias` (4·units), gate order i, f, c, o, and with
    ``peephole=True`` `peephole_kernel` (3, units) for the i, f and o gates.

    Args:
        units: positive int, size of h and c.
        activation: candidate and output activation (default tanh).
        recurrent_activation: gate activation (default sigmoid).
        use_bias: whether the gates have a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the
            weights (the peephole weights use kernel_initializer).
        unit_forget_bias: add 1 to the forget-gate bias at initialisation.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs dropped (one mask per sequence), in [0, 1).
        recurrent_dropout: fraction of h dropped before the recurrent product, in [0, 1).
        seed: seed of the dropout masks.
        peephole: add diagonal peephole connections from the cell to the gates.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: (batch, input_dim).
        states: [h, c], each (batch, units).
        training: whether dropout applies.

    Returns:
        (h, [h, c]).

    Raises:
        ValueError: units not positive or a dropout rate outside [0, 1).

    >>> cell = LSTMCell(4)
    >>> h, (h, c) = cell(tf.zeros((2, 3)), [tf.zeros((2, 4)), tf.zeros((2, 4))])
    >>> h.shape, c.shape
    (TensorShape([2, 4]), TensorShape([2, 4]))
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
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        peephole=False,
        **kwargs,
    ):
        check_units(units)
        check_rate("dropout", dropout)
        check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
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
        self.peephole = bool(peephole)
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            base_init = self.bias_initializer
            units = self.units

            if self.unit_forget_bias:

                def bias_init(shape, dtype=None):
                    return tf.concat(
                        [
                            base_init((units,), dtype=dtype),
                            tf.ones((units,), dtype=dtype),
                            base_init((2 * units,), dtype=dtype),
                        ],
                        axis=0,
                    )

            else:
                bias_init = base_init
            self.bias = self.add_weight(
                shape=(4 * self.units,),
                name="bias",
                initializer=bias_init,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        if self.peephole:
            self.peephole_kernel = self.add_weight(
                shape=(3, self.units),
                name="peephole_kernel",
                initializer=self.kernel_initializer,
            )
        else:
            self.peephole_kernel = None
        self.built = True

    def get_initial_state(self, batch_size=None):
        return [tf.zeros(tf.stack([batch_size, s]), dtype=self.compute_dtype)
                for s in self.state_size]

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        if training and self.dropout > 0:
            inputs = keras.random.dropout(inputs, rate=self.dropout, seed=self.seed_generator)
        if training and self.recurrent_dropout > 0:
            h_prev = keras.random.dropout(
                h_prev, rate=self.recurrent_dropout, seed=self.seed_generator
            )
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h_prev, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        peep = None if self.peephole_kernel is None else tf.convert_to_tensor(self.peephole_kernel)
        h, c = loops.lstm_step(z, c_prev, self.activation, self.recurrent_activation, peep)
        return h, [h, c]

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
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "peephole": self.peephole,
        }
        return {**super().get_config(), **own}


_CELL_ARGS = tuple(
    k for k in LSTMCell.__init__.__code__.co_varnames[1 : LSTMCell.__init__.__code__.co_argcount]
)


@keras.saving.register_keras_serializable(package="forecast")
class LSTM(RecurrentLayer):
    """Long short-term memory layer, a drop-in for `keras.layers.LSTM`.

    Same weights as `keras.layers.LSTM` (`set_weights(keras_lstm.get_weights())` works), same
    numbers, three kernels: cuDNN on a GPU, a fused CPU kernel with a hand-written gradient
    (peepholes and masks included), and a general loop for recurrent dropout and other
    activations.

    Args:
        units: positive int, size of the output and of the states.
        activation, recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint, dropout,
        recurrent_dropout, seed: as in `keras.layers.LSTM` (see `LSTMCell`).
        peephole: diagonal peephole connections (i, f see c_prev; o sees c). CPU only.
        return_sequences, return_state, go_backwards, stateful: as in `keras.layers.LSTM`.
        implementation: "auto" (cuDNN when it can, else fused), "cudnn" or "fused".
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable, ...).

    Call arguments:
        inputs: (batch, steps, features).
        mask: (batch, steps) booleans, True for steps to use (right padding on cuDNN).
        training: whether dropout applies.
        initial_state: [h, c], each (batch, units); zeros (or the carried states) if None.

    Returns:
        (batch, units), or (batch, steps, units) with return_sequences; with return_state
        the list [output, h, c].

    Raises:
        ValueError: an invalid argument (units, rates, implementation).
        ConfigError: implementation="cudnn" with a configuration cuDNN cannot run (peephole,
            recurrent dropout, other activations, no bias); at call time, no GPU.

    >>> layer = LSTM(8, return_sequences=True, return_state=True)
    >>> out, h, c = layer(tf.zeros((4, 10, 3)))
    >>> out.shape, h.shape, c.shape
    (TensorShape([4, 10, 8]), TensorShape([4, 8]), TensorShape([4, 8]))
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
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        peephole=False,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        implementation="auto",
        **kwargs,
    ):
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            peephole=peephole,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
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

    def _cudnn_blockers(self):
        out = super()._cudnn_blockers()
        if self.cell.peephole:
            out.append("peephole=True")
        return out

    def _weights(self):
        cell = self.cell
        bias = None if cell.bias is None else tf.convert_to_tensor(cell.bias)
        return tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel), bias

    def _peephole_weights(self):
        kernel = self.cell.peephole_kernel
        return None if kernel is None else tf.convert_to_tensor(kernel)

    def _run_fused(self, x, states, training, mask):
        kernel, recurrent_kernel, bias = self._weights()
        out, h, c = fused.lstm_fused(
            x, states[0], states[1], kernel, recurrent_kernel, bias,
            return_sequences=self.return_sequences, peephole=self._peephole_weights(), mask=mask,
        )
        return out, [h, c]

    def _run_loop(self, x, mask, states, training):
        cell = self.cell
        kernel, recurrent_kernel, bias = self._weights()
        rec_mask = None
        if training and cell.recurrent_dropout > 0:
            rec_mask = keras.random.dropout(
                tf.ones_like(states[0]), rate=cell.recurrent_dropout, seed=cell.seed_generator
            )
        hs, h, c = loops.lstm_loop(
            x, mask, states[0], states[1], kernel, recurrent_kernel, bias,
            activation=cell.activation, recurrent_activation=cell.recurrent_activation,
            peephole=self._peephole_weights(), recurrent_mask=rec_mask,
        )
        return hs, [h, c]

    def _run_cudnn(self, x, states, lengths, training):
        kernel, recurrent_kernel, bias = self._weights()
        hs, h, c = cudnn.lstm_cudnn(
            x, states[0], states[1], kernel, recurrent_kernel, bias,
            lengths=lengths, go_backwards=self.go_backwards,
        )
        return hs, [h, c]

    def get_config(self):
        cell_config = self.cell.get_config()
        own = {k: cell_config[k] for k in _CELL_ARGS if k in cell_config}
        return {**super().get_config(), **own}
