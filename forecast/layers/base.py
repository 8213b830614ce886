"""Shared machinery of our recurrent layers: arguments, kernel choice, states, masks, outputs.

`RecurrentLayer` is a `keras.layers.Layer` that owns a cell (which holds the weights, laid out
as in Keras) and runs whole sequences through one of three kernels:

- ``"cudnn"``: TensorFlow's cuDNN RNN op (`cudnn.py`), on a GPU when the configuration allows;
- ``"fused"``: the CPU kernel with a hand-written gradient (`fused.py`);
- ``"loop"``: the general autodiff loop (`loops.py`) for recurrent dropout and non-default
  activations. It is part of the CPU path (``implementation="fused"``).

After a call, ``layer.kernel_used`` names the kernel and ``layer.kernel_reason`` says why; the
choice is logged once per layer on the ``forecast.layers`` logger.
"""

import logging

import keras
import tensorflow as tf

from forecast.errors import ConfigError
from forecast.layers import cudnn

logger = logging.getLogger("forecast.layers")

IMPLEMENTATIONS = ("auto", "cudnn", "fused")


def check_units(units):
    """Raises ValueError unless units is a positive integer."""
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"`units` must be a positive integer. Received: units={units!r}")


def check_rate(name, value):
    """Raises ValueError unless 0 <= value < 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")


def is_default_activation(fn, name):
    """True when a Keras activation callable is the standard tanh / sigmoid."""
    return keras.activations.serialize(fn) == name


class RecurrentLayer(keras.layers.Layer):
    """Base class of `LSTM` and `GRU`: runs a cell over (batch, steps, features) sequences.

    Subclasses set ``self.cell`` and implement `_cudnn_blockers`, `_run_fused`, `_run_loop` and
    `_run_cudnn` on time-major tensors.

    Args:
        return_sequences: return the output of every step, (batch, steps, units), instead of
            the last one, (batch, units).
        return_state: also return the final states.
        go_backwards: process the sequence backwards and return the reversed sequence.
        stateful: carry the final states of a batch over as the initial states of the next
            one (needs a static batch size).
        implementation: ``"auto"`` (cuDNN when possible, else the fused CPU kernel),
            ``"cudnn"`` (raise a ConfigError when it cannot run) or ``"fused"``.
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable, ...).

    Raises:
        ValueError: `implementation` is not one of "auto", "cudnn", "fused".
    """

    def __init__(
        self,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        implementation="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {IMPLEMENTATIONS}. "
                f"Received: implementation={implementation!r}"
            )
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.implementation = implementation
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(ndim=3)
        object.__setattr__(self, "states", None)
        self.kernel_used = None
        self.kernel_reason = None
        self._logged_kernel = None

    # ---------------------------------------------------------------- to implement per cell

    def _activation_blockers(self):
        """Both kernels are written for tanh and sigmoid: the reasons when the cell has others."""
        out = []
        if not is_default_activation(self.cell.activation, "tanh"):
            out.append("activation is not tanh")
        if not is_default_activation(self.cell.recurrent_activation, "sigmoid"):
            out.append("recurrent_activation is not sigmoid")
        return out

    def _cudnn_blockers(self):
        """Reasons (strings) why the configuration cannot run on cuDNN; [] if it can.

        The conditions every cell shares; a subclass adds its own (e.g. peephole).
        """
        cell = self.cell
        out = self._activation_blockers()
        if not cell.use_bias:
            out.append("use_bias=False")
        if cell.recurrent_dropout > 0:
            out.append("recurrent_dropout > 0")
        if self.compute_dtype == "bfloat16":  # TensorFlow's CudnnRNN takes half/float/double
            out.append("compute dtype bfloat16")
        return out

    def _require_cudnn_possible(self, implementation):
        """Raises when ``implementation="cudnn"`` was asked for a configuration cuDNN cannot run.

        Raises:
            ConfigError: naming every condition that fails.
        """
        if implementation == "cudnn" and self._cudnn_blockers():
            raise ConfigError(
                f"{type(self).__name__}: implementation='cudnn' cannot run: "
                f"{'; '.join(self._cudnn_blockers())}. Use implementation='auto' or 'fused'."
            )

    def _fused_blockers(self, training):
        """Reasons why the fused CPU kernel cannot run this call; [] if it can.

        The conditions every cell shares; a subclass may add its own.
        """
        cell = self.cell
        out = self._activation_blockers()
        if training and cell.recurrent_dropout > 0:
            out.append("recurrent_dropout in training")
        return out

    def _run_fused(self, x, states, training, mask):
        """x: [B, T, D], mask: None or [B, T] bool (both already reversed for go_backwards).

        Returns:
            (output, new_states).
        """
        raise NotImplementedError

    def _run_loop(self, x, mask, states, training):
        raise NotImplementedError

    def _run_cudnn(self, x, states, lengths, training):
        raise NotImplementedError

    # ---------------------------------------------------------------- Keras API

    @property
    def units(self):
        return self.cell.units

    @property
    def state_size(self):
        return self.cell.state_size

    def build(self, inputs_shape, initial_state_shape=None):
        if inputs_shape[-1] is None:
            raise ValueError(
                "The last dimension (features) of the inputs must be known. "
                f"Received: inputs.shape={inputs_shape}"
            )
        if not self.cell.built:
            self.cell.build((inputs_shape[0], inputs_shape[-1]))
        if self.stateful and self.states is None:
            if inputs_shape[0] is None:
                raise ValueError(
                    "When using `stateful=True`, the batch size must be static: pass "
                    "`batch_shape=(batch, steps, features)` to `keras.Input`. "
                    f"Received: inputs.shape={inputs_shape}"
                )
            self._create_state_variables(inputs_shape[0])
        self.built = True

    def _create_state_variables(self, batch_size):
        # Not tracked as weights (as in keras.layers.RNN): get_weights()/set_weights() and
        # saved files hold the same arrays as keras.layers.LSTM.
        states = [
            keras.Variable(
                tf.zeros((batch_size, size), dtype=self.variable_dtype),
                trainable=False,
                name=f"{self.name}_state_{k}",
            )
            for k, size in enumerate(self.cell.state_size)
        ]
        object.__setattr__(self, "states", states)

    def reset_state(self):
        """Sets the carried states of a stateful layer back to zeros."""
        if self.states is not None:
            for v in self.states:
                v.assign(tf.zeros_like(v))

    def reset_states(self):
        """Alias of `reset_state` (Keras compatibility)."""
        self.reset_state()

    def get_initial_state(self, batch_size):
        return self.cell.get_initial_state(batch_size)

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        batch = inputs_shape[0]
        if self.return_sequences:
            out = (batch, inputs_shape[1], self.units)
        else:
            out = (batch, self.units)
        if self.return_state:
            return [out] + [(batch, s) for s in self.cell.state_size]
        return out

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask] + [None] * len(self.cell.state_size)
        return out_mask

    # ---------------------------------------------------------------- kernel choice

    def _choose_kernel(self, mask, training):
        """Returns (kernel, reason) for this call; raises ConfigError for an impossible cuDNN."""
        if self.implementation in ("auto", "cudnn"):
            blockers = self._cudnn_blockers()
            if not cudnn.gpu_available():
                blockers = blockers + ["no GPU with cuDNN is visible to TensorFlow"]
            if not blockers:
                why = "implementation='cudnn'" if self.implementation == "cudnn" else "GPU found"
                return "cudnn", f"{why}; {'right-padded mask' if mask is not None else 'no mask'}"
            if self.implementation == "cudnn":
                raise ConfigError(
                    f"{type(self).__name__} '{self.name}': implementation='cudnn' cannot run: "
                    + "; ".join(blockers)
                    + ". Use implementation='auto' (falls back to the fused CPU kernel) or "
                    "implementation='fused'."
                )
            cpu_reason = "cuDNN not possible (" + "; ".join(blockers) + ")"
        else:
            cpu_reason = "implementation='fused'"
        fused_blockers = self._fused_blockers(training)
        if fused_blockers:
            return "loop", f"{cpu_reason}; general loop for " + ", ".join(fused_blockers)
        return "fused", cpu_reason

    def _record(self, kernel, reason):
        self.kernel_used = kernel
        self.kernel_reason = reason
        if self._logged_kernel != kernel:
            self._logged_kernel = kernel
            logger.info("%s '%s' runs the %s kernel: %s", type(self).__name__, self.name,
                        kernel, reason)

    # ---------------------------------------------------------------- call

    def call(self, inputs, mask=None, training=None, initial_state=None):
        x = tf.convert_to_tensor(inputs, dtype=self.compute_dtype)  # [B, T, D]
        batch = tf.shape(x)[0]
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if initial_state is None:
            if self.stateful:
                states = [tf.convert_to_tensor(v) for v in self.states]
            else:
                states = [tf.zeros(tf.stack([batch, s]), dtype=x.dtype)
                          for s in self.cell.state_size]
        else:
            if not isinstance(initial_state, (list, tuple)):
                initial_state = [initial_state]
            if len(initial_state) != len(self.cell.state_size):
                raise ValueError(
                    f"`initial_state` must be a list of {len(self.cell.state_size)} tensors "
                    f"of shape (batch, {self.units}). Received {len(initial_state)} tensors."
                )
            states = [tf.convert_to_tensor(s, dtype=x.dtype) for s in initial_state]

        if training and self.cell.dropout > 0:
            # One mask per sequence, the same at every step (as keras' cuDNN path does).
            keep = keras.random.dropout(
                tf.ones_like(x[:, 0, :]), rate=self.cell.dropout, seed=self.cell.seed_generator
            )
            x = x * keep[:, None, :]

        kernel, reason = self._choose_kernel(mask, training)
        self._record(kernel, reason)

        if kernel == "fused":  # batch-major in and out; transposes happen inside the XLA kernel
            if mask is not None:
                mask = tf.cast(mask, tf.bool)
            if self.go_backwards:
                x = tf.reverse(x, [1])
                mask = None if mask is None else tf.reverse(mask, [1])
            output, new_states = self._run_fused(x, states, training, mask)
            return self._finish(output, new_states)

        x_tm = tf.transpose(x, [1, 0, 2])  # [B, T, D] -> [T, B, D]
        mask_tm = None if mask is None else tf.transpose(tf.cast(mask, tf.bool))  # [T, B]

        if kernel == "cudnn":
            lengths = None if mask_tm is None else cudnn.right_padded_lengths(mask_tm)
            outs, new_states = self._run_cudnn(x_tm, states, lengths, training)
            if mask_tm is not None and not self.go_backwards:
                # cuDNN writes zeros past the end; Keras repeats the last output there.
                outs = tf.where(mask_tm[:, :, None], outs, new_states[0][None])
        else:
            if self.go_backwards:
                x_tm = tf.reverse(x_tm, [0])
                mask_tm = None if mask_tm is None else tf.reverse(mask_tm, [0])
            outs, new_states = self._run_loop(x_tm, mask_tm, states, training)

        if self.return_sequences:
            output = tf.transpose(outs, [1, 0, 2])  # [T, B, H] -> [B, T, H]
        else:
            output = outs[-1]  # [B, H]
        return self._finish(output, new_states)

    def _finish(self, output, new_states):
        if self.stateful:
            for var, value in zip(self.states, new_states, strict=True):
                var.assign(value)
        if self.return_state:
            return [output, *new_states]
        return output

    def get_config(self):
        own = {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "implementation": self.implementation,
        }
        return {**super().get_config(), **own}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
