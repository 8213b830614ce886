"""The segment setup: a recurrent layer that steps over segments of the lookback (SegRNN).

SegRNN (Lin et al. 2023, "SegRNN: Segment Recurrent Neural Network for Long-Term Time Series
Forecasting"; public code github.com/lss-1138/SegRNN, ``models/SegRNN.py``) cuts each series'
lookback L into L/w segments of w steps, embeds every segment (Linear w -> d, ReLU) and runs a
recurrent layer over the L/w segment steps instead of the L time steps. The horizon H is
forecast as H/w segments, each read off a hidden state by Dropout + Linear d -> w.

::

    past [B, L, T] -> per series [B·T, L/w, w] -> embed [B·T, L/w, d] -> recurrent -> h(, c)
    parallel:  h(, c) repeated per output segment [B·T·m, d]; one recurrent step over a learned
               query (position, and channel when there are several series) -> [B·T·m, d]
               -> Dropout, Dense d -> w -> [B, H, T]
    recurrent: segment j read off the state; it is embedded and fed to the next step

Taken from SegRNN:

- segment-wise iteration: `Dense(w -> d, relu)` over non-overlapping segments, one recurrent
  layer of size d (``units``) over the L/w segments;
- ONE recurrent layer shared by the encoder and the decoder (SegRNN calls ``self.rnn`` in both);
- the parallel decoder (SegRNN's PMF, ``dec_way="pmf"``): the encoder's final states repeated
  m = H/w times into the batch; one recurrent step per (series, output segment) over a learned
  position embedding, concatenated with a learned channel embedding when several series share
  the weights (SegRNN's ``channel_id``); the rows are ordered (series, segment), as in SegRNN;
- the recurrent decoder (SegRNN's RMF, ``dec_way="rmf"``): the first segment is read off the
  encoder's final hidden state; each following step embeds the previous predicted segment with
  the same segment embedding and runs one recurrent step carrying the states;
- embeddings initialised from a standard normal (``torch.randn``); dropout only before the
  output Dense;
- channel independence: every target channel is a series of its own through shared weights.

What differs:

- cells: our ``"lstm"``, ``"peephole"`` and ``"gru"`` (`forecast.layers`), no vanilla RNN;
  ``layers`` is not read (SegRNN has one recurrent layer);
- the instance normalisation (SegRNN's RevIN or subtract-last) is the builder's
  (``instance_norm``), not part of the setup;
- with a channel embedding the position part has ``d - d // 2`` values and the channel part
  ``d // 2`` (SegRNN uses ``d // 2`` for both, which breaks for odd d); the channel embedding
  is used whenever more than one series share the weights (C·T > 1), never for one;
- the series of a row: with the builder's channel independence the batch already holds
  (B·C) rows, channel ``r % C``; target channels T > 1 are moved into the batch inside the
  setup, so the series id of row r of the inner batch is ``r % (C·T)``;
- the recurrent decoder feeds back the median-most quantile with quantile heads, and skips
  SegRNN's last recurrent step, whose output is unused;
- quantiles: the output Dense is a `QuantileHead` (d -> w·Q, ordered quantiles); SegRNN has
  point forecasts only;
- the lookback and horizon must be multiples of w (SegRNN floors L/w and would fail on H);
  a clear ConfigError says which sizes would fit.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from forecast.errors import ConfigError
from forecast.models.heads import anchor_index, make_head
from forecast.models.normalization import BatchToChannels, ChannelsToBatch
from forecast.models.setups import Setup, make_recurrent
from forecast.options import SEGMENT_DECODERS, suggest

# Options the setup reads, with the values used when the options object lacks the field.
DEFAULTS = {
    "cell": "lstm",
    "units": 32,
    "dropout": 0.0,
    "quantiles": None,
    "seed": None,
    "segment_length": 24,
    "segment_decoder": "parallel",
}


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _multiples_around(value, step):
    """The multiples of `step` just below and just above `value` (positive ones only)."""
    low = (value // step) * step
    return [v for v in (low, low + step) if v > 0]


def _divisors_near(target, *numbers, k=3):
    """Up to k common divisors of `numbers` nearest `target`, in increasing order."""
    first = numbers[0]
    common = [d for d in range(1, first + 1) if all(n % d == 0 for n in numbers)]
    return sorted(sorted(common, key=lambda d: (abs(d - target), d))[:k])


def _join(values, word="or"):
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} {word} {values[-1]}"


def check_segment_sizes(lookback: int, horizon: int, segment_length: int) -> None:
    """Checks that the lookback and the horizon are whole numbers of segments.

    Args:
        lookback: L.
        horizon: H.
        segment_length: w.

    Raises:
        ConfigError: L or H is not a multiple of w; the message names the sizes and suggests
            the nearest valid lookbacks (or horizons) and segment lengths that divide both.

    Example:
        >>> check_segment_sizes(96, 24, 24)  # fine
        >>> check_segment_sizes(100, 24, 24)
        Traceback (most recent call last):
        ConfigError: lookback 100 is not a multiple of segment_length 24: ...
    """
    w = segment_length
    fits = _join(_divisors_near(w, lookback, horizon))
    for what, size in (("lookback", lookback), ("horizon", horizon)):
        if size % w:
            raise ConfigError(
                f"{what} {size} is not a multiple of segment_length {w}: the segment setup "
                f"cuts the {what} into whole segments of {w} steps. Use a {what} of "
                f"{_join(_multiples_around(size, w))}, or a segment_length that divides both "
                f"the lookback {lookback} and the horizon {horizon}, e.g. {fits}."
            )


@keras.saving.register_keras_serializable(package="forecast")
class SegmentQueries(keras.layers.Layer):
    """The inputs of the parallel decoder: one learned query per (series, output segment).

    The query of output segment j of the series in row r is the position vector j, followed,
    when several series share the weights (``channels > 1``), by the channel vector
    ``r % channels``. Rows come out ordered (row, segment): row ``r·segments + j``.

    Args:
        segments: output segments m = H / w.
        dim: size of each query, d (the recurrent layer's input size).
        channels: series sharing the weights; the channel vectors have ``dim // 2`` values and
            the position vectors ``dim - dim // 2`` when it is above 1 (and dim above 1).

    Call arguments:
        reference: any tensor whose first axis is the batch N of series.

    Returns:
        (N·segments, 1, dim).

    >>> SegmentQueries(2, 8, channels=3)(tf.zeros((6, 4, 8))).shape
    TensorShape([12, 1, 8])
    """

    def __init__(self, segments, dim, channels=1, **kwargs):
        super().__init__(**kwargs)
        _positive_int("segments", segments)
        _positive_int("dim", dim)
        _positive_int("channels", channels)
        self.segments = int(segments)
        self.dim = int(dim)
        self.channels = int(channels)
        self.channel_dim = self.dim // 2 if self.channels > 1 else 0
        self.position_dim = self.dim - self.channel_dim

    def build(self, reference_shape):
        init = keras.initializers.RandomNormal(stddev=1.0)  # SegRNN: torch.randn
        self.position = self.add_weight(shape=(self.segments, self.position_dim),
                                        initializer=init, name="position")
        if self.channel_dim:
            self.channel = self.add_weight(shape=(self.channels, self.channel_dim),
                                           initializer=init, name="channel")
        self.built = True

    def call(self, reference):
        n = tf.shape(reference)[0]
        queries = tf.tile(self.position, [n, 1])  # [m, Dp] -> [N·m, Dp]
        if self.channel_dim:
            ids = tf.math.floormod(tf.range(n), self.channels)  # [N] series of each row
            chan = tf.gather(self.channel, ids)  # [C, Dc] -> [N, Dc]
            chan = tf.repeat(chan, self.segments, axis=0)  # [N, Dc] -> [N·m, Dc]
            queries = tf.concat([queries, chan], axis=-1)  # [N·m, Dp + Dc] = [N·m, d]
        return queries[:, None, :]  # [N·m, d] -> [N·m, 1, d]

    def compute_output_shape(self, reference_shape):
        n = reference_shape[0]
        return (None if n is None else n * self.segments, 1, self.dim)

    def get_config(self):
        own = {"segments": self.segments, "dim": self.dim, "channels": self.channels}
        return {**super().get_config(), **own}


@keras.saving.register_keras_serializable(package="forecast")
class RepeatRows(keras.layers.Layer):
    """Repeats every row of the batch: (N, ...) -> (N·times, ...), row ``r·times + j`` = r.

    Args:
        times: copies of each row.

    >>> RepeatRows(3)(tf.zeros((2, 5))).shape
    TensorShape([6, 5])
    """

    def __init__(self, times, **kwargs):
        super().__init__(**kwargs)
        _positive_int("times", times)
        self.times = int(times)

    def call(self, inputs):
        return tf.repeat(inputs, self.times, axis=0)  # [N, D] -> [N·m, D]

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        return (None if n is None else n * self.times, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "times": self.times}


@keras.saving.register_keras_serializable(package="forecast")
class MergeSegments(keras.layers.Layer):
    """Joins the output segments of each series: (N·m, w, ...) -> (N, m·w, ...).

    The inverse of the (row, segment) order of `RepeatRows` / `SegmentQueries`.

    Args:
        segments: m.

    >>> MergeSegments(2)(tf.zeros((6, 24, 1))).shape
    TensorShape([3, 48, 1])
    """

    def __init__(self, segments, **kwargs):
        super().__init__(**kwargs)
        _positive_int("segments", segments)
        self.segments = int(segments)

    def call(self, inputs):
        steps = self.segments * inputs.shape[1]
        tail = list(inputs.shape[2:])
        return tf.reshape(inputs, [-1, steps, *tail])  # [N·m, w, ...] -> [N, m·w, ...]

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        batch = None if n is None else n // self.segments
        return (batch, self.segments * input_shape[1], *input_shape[2:])

    def get_config(self):
        return {**super().get_config(), "segments": self.segments}


@keras.saving.register_keras_serializable(package="forecast")
class SegmentFeedback(keras.layers.Layer):
    """A predicted segment as the next input of the recurrent decoder: (N, w, 1[, Q]) -> (N, 1, w).

    Args:
        quantile: with quantile forecasts, the index of the quantile fed back (the median-most
            one); None for point forecasts.

    >>> SegmentFeedback()(tf.zeros((4, 24, 1))).shape
    TensorShape([4, 1, 24])
    """

    def __init__(self, quantile=None, **kwargs):
        super().__init__(**kwargs)
        self.quantile = None if quantile is None else int(quantile)

    def call(self, inputs):
        x = inputs if self.quantile is None else inputs[..., self.quantile]  # [N, w, 1]
        return tf.reshape(x, [-1, 1, inputs.shape[1]])  # [N, w, 1] -> [N, 1, w]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "quantile": self.quantile}


@keras.saving.register_keras_serializable(package="forecast")
class TakeSlice(keras.layers.Layer):
    """``inputs[..., start:stop]`` along one axis, as a layer (no Lambda, so it saves and loads
    with ``safe_mode=True``).

    Args:
        axis: the axis cut (1 or -1 in practice).
        start, stop: the range kept.

    >>> TakeSlice(-1, 0, 2)(tf.zeros((4, 6, 3))).shape
    TensorShape([4, 6, 2])
    """

    def __init__(self, axis, start, stop, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.start, self.stop = int(axis), int(start), int(stop)
        if not 0 <= self.start < self.stop:
            raise ConfigError(f"`start` and `stop` must satisfy 0 <= start < stop. Received: "
                              f"start={start}, stop={stop}")

    def call(self, inputs):
        size = self.stop - self.start
        axis = self.axis % len(inputs.shape)
        begin = [0] * len(inputs.shape)
        begin[axis] = self.start
        sizes = [-1] * len(inputs.shape)
        sizes[axis] = size
        return tf.slice(inputs, begin, sizes)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self.axis % len(shape)] = self.stop - self.start
        return tuple(shape)

    def get_config(self):
        own = {"axis": self.axis, "start": self.start, "stop": self.stop}
        return {**super().get_config(), **own}


@keras.saving.register_keras_serializable(package="forecast")
class SegmentCovariates(keras.layers.Layer):
    """The known-future covariates of each output segment as a vector of the decoder's size.

    The horizon's covariates (B, H, Fu) are cut into m = H / w segments; the w·Fu values of a
    segment go through one Dense (w·Fu -> d) shared by all segments. Every row of the batch is
    repeated ``repeats`` times (the target channels moved into the batch, row ``b·T + t``),
    and the result is ordered (row, segment) like `SegmentQueries`.

    Args:
        segments: m.
        dim: d.
        repeats: T, rows per batch row in the decoder's batch.
        flat: return (N·m, 1, d) (the parallel decoder's queries) instead of (N, m, d).

    Call arguments:
        future: (B, H, Fu), H = m·w.

    Returns:
        (B·repeats·m, 1, d) when ``flat``, else (B·repeats, m, d).

    >>> SegmentCovariates(2, 8, repeats=3, flat=True)(tf.zeros((4, 48, 2))).shape
    TensorShape([24, 1, 8])
    """

    def __init__(self, segments, dim, repeats=1, flat=True, **kwargs):
        super().__init__(**kwargs)
        _positive_int("segments", segments)
        _positive_int("dim", dim)
        _positive_int("repeats", repeats)
        self.segments, self.dim, self.repeats = int(segments), int(dim), int(repeats)
        self.flat = bool(flat)

    def build(self, future_shape):
        steps, features = future_shape[1], future_shape[-1]
        if steps % self.segments:
            raise ConfigError(f"the future input's {steps} steps are not {self.segments} whole "
                              "segments.")
        self.width = steps // self.segments * features  # w·Fu
        self.kernel = self.add_weight(shape=(self.width, self.dim), name="kernel",
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(self.dim,), name="bias", initializer="zeros")
        self.built = True

    def call(self, future):
        x = tf.reshape(future, [-1, self.segments, self.width])  # [B, H, Fu] -> [B, m, w·Fu]
        x = tf.matmul(x, self.kernel) + self.bias  # [B, m, w·Fu] -> [B, m, d]
        if self.repeats > 1:
            x = tf.repeat(x, self.repeats, axis=0)  # [B, m, d] -> [B·T, m, d]
        if self.flat:
            return tf.reshape(x, [-1, 1, self.dim])  # [N, m, d] -> [N·m, 1, d]
        return x

    def compute_output_shape(self, future_shape):
        b = future_shape[0]
        n = None if b is None else b * self.repeats
        if self.flat:
            return (None if n is None else n * self.segments, 1, self.dim)
        return (n, self.segments, self.dim)

    def get_config(self):
        own = {"segments": self.segments, "dim": self.dim, "repeats": self.repeats,
               "flat": self.flat}
        return {**super().get_config(), **own}


class Segment(Setup):
    """Segment recurrent setup (SegRNN): a recurrent layer over segments of the lookback.

    Each target channel is a series of its own through shared weights. Its lookback is cut
    into L/w segments, each embedded (Dense w -> d, ReLU), and one recurrent layer of size d
    runs over the L/w segment steps. The horizon is forecast as m = H/w segments by the same
    recurrent layer (see the module docstring for the two decoders), each segment read off a
    hidden state by Dropout and Dense d -> w (d -> w·Q with quantiles).

    Options read (``getattr``, with these defaults when the field is missing):
    ``cell`` ("lstm"), ``units`` (32; d), ``dropout`` (0.0), ``quantiles`` (None), ``seed``
    (None), ``segment_length`` (24; w), ``segment_decoder`` ("parallel" or "recurrent").

    Args:
        options: the model options (e.g. `ModelOptions`).
        horizon: forecast steps H, a multiple of ``segment_length``.
        n_targets: target channels T; the past input must hold exactly these.
        n_channels: C, when the builder has already moved C channels into the batch (channel
            independence: rows B·C, channel of row r is ``r % C``); it sizes the channel
            embedding of the parallel decoder.

    Known-future covariates (``future``, e.g. prices or promotions) are read per output
    segment: the segment's w·Fu values go through one Dense (w·Fu -> d, `SegmentCovariates`)
    added to the parallel decoder's query of that segment (position embedding), or, in the
    recurrent decoder, to the hidden state each segment is read off. Their lookback channels
    (the last Fu channels of ``past``) are not read: the encoder reads the targets alone.

    Call arguments:
        past: (B, L, T) or, with ``future``, (B, L, T + Fu); L a multiple of
            ``segment_length``.
        future: (B, H, Fu) known-future covariates, or None.

    Returns:
        (B, H, T), or (B, H, T, Q) with quantiles.

    Raises:
        ConfigError: an unknown cell or segment_decoder, a size that is not a positive integer,
            a lookback or horizon that is not a multiple of segment_length, covariates.

    Example:
        >>> past = keras.Input((96, 2))
        >>> Segment(ModelOptions(units=16), 24, 2)(past).shape
        (None, 24, 2)
    """

    NAME = "segment"
    SUPPORTS_FUTURE_COVARIATES = True
    SUPPORTS_PAST_COVARIATES = False
    #: no calendar features: the setup reads the targets and, per output segment, the
    #: future covariates the user names (tuned without calendar features)
    READS_CALENDAR = False
    SUPPORTS_STATIC_COVARIATES = False

    def __init__(self, options, horizon: int, n_targets: int, n_channels: int = 1):
        super().__init__(options, horizon, n_targets)
        opt = {key: getattr(options, key, default) for key, default in DEFAULTS.items()}
        _positive_int("horizon", horizon)
        _positive_int("n_targets", n_targets)
        _positive_int("n_channels", n_channels)
        _positive_int("units", opt["units"])
        _positive_int("segment_length", opt["segment_length"])
        if opt["segment_decoder"] not in SEGMENT_DECODERS:
            raise suggest("segment_decoder", opt["segment_decoder"], SEGMENT_DECODERS)
        self.cell = opt["cell"]
        self.units = opt["units"]
        self.dropout = float(opt["dropout"] or 0.0)
        self.quantiles = None if opt["quantiles"] is None else tuple(opt["quantiles"])
        self.seed = opt["seed"]
        self.segment_length = opt["segment_length"]
        self.decoder = opt["segment_decoder"]
        self.n_channels = n_channels
        # built here so that an unknown cell fails before any tensor is made
        self.rnn = make_recurrent(self.cell, self.units, return_state=True, name="recurrent")

    def __call__(self, past, future=None):
        lookback, features = past.shape[1], past.shape[-1]
        if future is not None and features > future.shape[-1]:
            # [B, L, T + Fu] -> [B, L, T]: the encoder reads the targets alone
            past = TakeSlice(-1, 0, features - future.shape[-1], name="targets_only")(past)
            features = past.shape[-1]
        if features != self.n_targets:
            raise ConfigError(
                f"setup 'segment' reads the target channels only: the past input has "
                f"{features} channels for {self.n_targets} targets. Drop the covariates."
            )
        w, t = self.segment_length, self.n_targets
        check_segment_sizes(lookback, self.horizon, w)
        n_in, m = lookback // w, self.horizon // w

        x = past
        if t > 1:
            x = ChannelsToBatch(name="targets_to_batch")(x)  # [B, L, T] -> [B·T, L, 1]
        x = keras.layers.Reshape((n_in, w), name="segments")(x)  # [N, L, 1] -> [N, L/w, w]
        embed = keras.layers.Dense(self.units, activation="relu", name="segment_embedding")
        x = embed(x)  # [N, L/w, w] -> [N, L/w, d]
        out = self.rnn(x)  # [N, L/w, d] -> [h [N, d], h(, c) each [N, d]]
        h, states = out[0], list(out[1:])

        drop = (keras.layers.Dropout(self.dropout, seed=self.seed, name="dropout")
                if self.dropout > 0 else None)
        head = make_head(1, self.quantiles, horizon=w, name="head")  # d -> w(·Q)
        covariates = None
        if future is not None:
            covariates = SegmentCovariates(
                m, self.units, repeats=t, flat=self.decoder == "parallel",
                name="segment_covariates")(future)  # [B, H, Fu] -> [N·m, 1, d] or [N, m, d]
        if self.decoder == "parallel":
            y = self._parallel(h, states, m, drop, head, covariates)  # -> [N, H, 1(, Q)]
        else:
            y = self._recurrent(h, states, m, drop, head, embed, covariates)  # [N, H, 1(, Q)]
        if t > 1:
            y = BatchToChannels(t, name="targets_from_batch")(y)  # -> [B, H, T(, Q)]
        return y

    def _parallel(self, h, states, m, drop, head, covariates=None):
        """PMF: one batched recurrent step per (series, output segment) -> (N, H, 1[, Q])."""
        series = self.n_channels * self.n_targets
        queries = SegmentQueries(m, self.units, channels=series, name="segment_queries")(
            h
        )  # [N, d] -> [N·m, 1, d]
        if covariates is not None:
            queries = keras.layers.Add(name="queries_with_covariates")(
                [queries, covariates])  # [N·m, 1, d]
        repeat = RepeatRows(m, name="repeat_states")
        start = [repeat(s) for s in states]  # each [N, d] -> [N·m, d]
        y = self.rnn(queries, initial_state=start)[0]  # [N·m, 1, d] -> [N·m, d]
        if drop is not None:
            y = drop(y)
        y = head(y)  # [N·m, d] -> [N·m, w, 1(, Q)]
        return MergeSegments(m, name="merge_segments")(y)  # -> [N, m·w = H, 1(, Q)]

    def _recurrent(self, h, states, m, drop, head, embed, covariates=None):
        """RMF: segment j read off the state, embedded and fed to step j + 1 -> (N, H, 1[, Q])."""
        quantile = None if self.quantiles is None else anchor_index(self.quantiles)
        feedback = SegmentFeedback(quantile, name="segment_feedback")
        outputs = []
        for j in range(m):
            read = h
            if covariates is not None:
                here = TakeSlice(1, j, j + 1, name=f"covariates_{j}")(covariates)  # [N, 1, d]
                here = keras.layers.Reshape((self.units,), name=f"covariates_flat_{j}")(here)
                read = keras.layers.Add(name=f"state_with_covariates_{j}")([h, here])  # [N, d]
            y = read if drop is None else drop(read)
            y = head(y)  # [N, d] -> [N, w, 1(, Q)]
            outputs.append(y)
            if j < m - 1:  # SegRNN also steps after the last segment; that output is unused
                x = embed(feedback(y))  # [N, w, 1(, Q)] -> [N, 1, w] -> [N, 1, d]
                out = self.rnn(x, initial_state=states)  # [N, 1, d] -> [h [N, d], h(, c)]
                h, states = out[0], list(out[1:])
        if m == 1:
            return outputs[0]
        return keras.layers.Concatenate(axis=1, name="segments_out")(outputs)  # [N, H, 1(, Q)]
