"""Static covariates of a global model: per-series values (category, region, size) and the
series id itself, encoded as numbers for the windows and embedded by the network.

``StaticCovariates`` is the encoding, fitted on the training series and saved as JSON in
``forecaster.json`` (no pickle): a text column gets a vocabulary (its training values, sorted;
code = position) and a learned embedding of ``min(8, (V + 1) // 2)`` values; a numeric column is
standardised over the series (one value per series, so a per-series scaler would zero it); with
``id_embedding > 0`` the series id is one more categorical column of that embedding size. An
unknown category at predict time is a ``DataError`` naming the series, the column, the value and
the known ones (no out-of-vocabulary bucket: a category never trained on has no learned vector).

``StaticEmbedding`` is the Keras layer: (B, S) codes and scaled numbers -> (B, E), looked up and
concatenated. ``WithStatic`` feeds that vector to every lookback step as extra input channels,
right after the past covariates (before the future covariates' channels), so every recurrent
setup reads it in its encoder and the synced setup holds it through its rollout like a past
covariate. The segment setup reads the targets alone and refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from forecast.errors import ConfigError, DataError

#: the column name of the series id's code among the static inputs
ID_COLUMN = "__series_id__"
#: the largest embedding of a categorical static column
MAX_EMBEDDING = 8


def embedding_size(vocabulary: int) -> int:
    """Values per category of a text column with ``vocabulary`` categories."""
    return max(1, min(MAX_EMBEDDING, (vocabulary + 1) // 2))


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


@dataclass
class StaticCovariates:
    """The encoding of a global model's static columns (and of its series id).

    Attributes:
        columns: the static columns, in input order (``ID_COLUMN`` last when embedded).
        kinds: ``"category"`` or ``"number"`` per column.
        vocabularies: per categorical column, its known values (code = position).
        centers, scales: per numeric column, the mean and standard deviation over the series.
        dims: embedding size per column (1 for a number).
        values: the training value (text) of every column for every known series.
    """

    columns: list[str]
    kinds: list[str]
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    centers: dict[str, float] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    dims: list[int] = field(default_factory=list)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, values: dict[str, dict[str, str]], ids: list[str], *,
            id_embedding: int = 0, source: str = "<frame>") -> StaticCovariates:
        """Fits the encoding on the training series.

        Args:
            values: ``{column: {id: text}}`` (``forecast.data.io.static_values``).
            ids: the training series.
            id_embedding: size of the id's embedding; 0 leaves it out.
            source: the file, named in messages.

        Raises:
            DataError: a training series without a value of a static column.
        """
        columns, kinds, vocabularies, centers, scales, dims = [], [], {}, {}, {}, []
        kept = {}
        for column, by_id in values.items():
            lacking = [key for key in ids if key not in by_id]
            if lacking:
                raise DataError(f"{source}: series {lacking[:3]} have no value in the static "
                                f"column {column!r} (--static, YAML `data.static`); fill it in.")
            texts = [str(by_id[key]) for key in ids]
            numbers = [_number(t) for t in texts]
            columns.append(column)
            kept[column] = dict(zip(ids, texts, strict=True))
            if all(n is not None for n in numbers):
                kinds.append("number")
                centers[column] = float(np.mean(numbers))
                std = float(np.std(numbers))
                scales[column] = std if std > 0 else 1.0
                dims.append(1)
            else:
                kinds.append("category")
                vocabularies[column] = sorted(set(texts))
                dims.append(embedding_size(len(vocabularies[column])))
        if id_embedding:
            columns.append(ID_COLUMN)
            kinds.append("category")
            vocabularies[ID_COLUMN] = list(ids)
            dims.append(int(id_embedding))
            kept[ID_COLUMN] = {key: key for key in ids}
        return cls(columns, kinds, vocabularies, centers, scales, dims, kept)

    @property
    def sizes(self) -> list[int]:
        """Vocabulary size per column (0 for a number)."""
        return [len(self.vocabularies[c]) if k == "category" else 0
                for c, k in zip(self.columns, self.kinds, strict=True)]

    def encode(self, key: str, given: dict[str, str] | None = None, *,
               source: str = "<frame>") -> np.ndarray:
        """One series' static inputs: codes and scaled numbers, (S,) float32.

        Args:
            key: the series id (a known one).
            given: ``{column: text}`` values sent with the history, which replace the saved
                ones (a series that changed region); None uses the training values.
            source: named in messages.

        Raises:
            DataError: a category the model never saw, or a value that is not a number in a
                numeric column; names the series, column and value.
        """
        out = np.zeros(len(self.columns), dtype=np.float32)
        for j, (column, kind) in enumerate(zip(self.columns, self.kinds, strict=True)):
            text = (given or {}).get(column) if column != ID_COLUMN else None
            if text is None:
                text = self.values.get(column, {}).get(key)
            if text is None and column == ID_COLUMN:
                raise DataError(f"{source}: series {key!r} was not trained on, and the model "
                                "embeds the series id (--id-embedding, YAML "
                                "`model.id_embedding`): it forecasts its training series only.")
            if text is None:
                raise DataError(f"{source}: series {key!r} has no value of the static column "
                                f"{column!r} (--static): it was not trained on; forecast "
                                "training series, or retrain with it in the training file.")
            if kind == "number":
                number = _number(text)
                if number is None:
                    raise DataError(f"{source}: series {key!r}: the static column {column!r} "
                                    f"holds {text!r}, not a number as in training.")
                out[j] = (number - self.centers[column]) / self.scales[column]
            else:
                vocabulary = self.vocabularies[column]
                if text not in vocabulary:
                    shown = ", ".join(repr(v) for v in vocabulary[:8])
                    raise DataError(
                        f"{source}: series {key!r}: the static column {column!r} holds "
                        f"{text!r}, a category the model was not trained on (it knows {shown}"
                        f"{', ...' if len(vocabulary) > 8 else ''}); use one of those or "
                        "retrain with it in the training file.")
                out[j] = vocabulary.index(text)
        return out

    def to_dict(self) -> dict:
        return {"columns": self.columns, "kinds": self.kinds, "vocabularies": self.vocabularies,
                "centers": self.centers, "scales": self.scales, "dims": self.dims,
                "values": self.values}

    @classmethod
    def from_dict(cls, data: dict) -> StaticCovariates:
        return cls(list(data["columns"]), list(data["kinds"]), dict(data["vocabularies"]),
                   dict(data["centers"]), dict(data["scales"]), list(data["dims"]),
                   {c: dict(v) for c, v in data["values"].items()})


def static_frame(frame: pd.DataFrame, encoding: StaticCovariates, given=None, *,
                 source: str = "<frame>") -> pd.DataFrame:
    """``frame`` (long format) with one column per static input, constant within each series.

    Args:
        frame: indexed by (id, time).
        encoding: the fitted ``StaticCovariates``.
        given: ``{column: {id: text}}`` sent with the frame (replacing the saved values), or
            None.
        source: named in messages.
    """
    keys = frame.index.get_level_values(0).astype(str)
    out = frame.copy()
    out.attrs = dict(frame.attrs)
    codes = {}
    for key in dict.fromkeys(keys):
        mine = {c: v[key] for c, v in (given or {}).items() if key in v}
        codes[key] = encoding.encode(key, mine or None, source=source)
    table = np.stack([codes[k] for k in keys]) if len(keys) else np.zeros(
        (0, len(encoding.columns)), np.float32)
    for j, column in enumerate(encoding.columns):
        out[column] = table[:, j]
    return out


@keras.saving.register_keras_serializable(package="forecast")
class StaticEmbedding(keras.layers.Layer):
    """Static inputs (codes and scaled numbers) -> one vector per series.

    Args:
        sizes: vocabulary size per input column; 0 for a number (passed through).
        dims: embedding size per column (1 for a number).

    Call arguments:
        static: (B, S) float: category codes (whole numbers) and scaled numbers.

    Returns:
        (B, sum(dims)).

    >>> StaticEmbedding([3, 0], [2, 1])(tf.constant([[2.0, 0.5]])).shape
    TensorShape([1, 3])
    """

    def __init__(self, sizes, dims, **kwargs):
        super().__init__(**kwargs)
        self.sizes, self.dims = [int(s) for s in sizes], [int(d) for d in dims]
        if len(self.sizes) != len(self.dims) or not self.sizes:
            raise ConfigError(f"`sizes` and `dims` must be lists of the same, non-zero length. "
                              f"Received: sizes={sizes}, dims={dims}")
        if any(s < 0 for s in self.sizes) or any(d < 1 for d in self.dims):
            raise ConfigError(f"`sizes` must be >= 0 and `dims` >= 1. Received: sizes={sizes}, "
                              f"dims={dims}")

    def build(self, static_shape):
        self.tables = [
            self.add_weight(shape=(size, dim), name=f"embedding_{j}",
                            initializer=keras.initializers.RandomNormal(stddev=0.1))
            if size else None
            for j, (size, dim) in enumerate(zip(self.sizes, self.dims, strict=True))]
        self.built = True

    def call(self, static):
        parts = []
        for j, table in enumerate(self.tables):
            column = static[:, j]  # [B]
            if table is None:
                parts.append(column[:, None])  # [B, 1]
            else:
                codes = tf.cast(tf.round(column), "int32")
                parts.append(tf.gather(table, codes))  # [B] -> [B, dim]
        return tf.concat(parts, axis=-1)  # [B, E]

    def compute_output_shape(self, static_shape):
        return (static_shape[0], sum(self.dims))

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes, "dims": self.dims}


@keras.saving.register_keras_serializable(package="forecast")
class WithStatic(keras.layers.Layer):
    """Inserts a per-series vector into every lookback step, after the first ``keep`` channels.

    Args:
        keep: channels before the static ones (targets and past covariates); the rest (the
            future covariates' lookback) follow them.

    Call arguments:
        inputs: ``[past (B, L, F), vector (B, E)]``.

    Returns:
        (B, L, F + E).

    >>> WithStatic(1)([tf.zeros((2, 4, 3)), tf.ones((2, 5))]).shape
    TensorShape([2, 4, 8])
    """

    def __init__(self, keep, **kwargs):
        super().__init__(**kwargs)
        self.keep = int(keep)
        if self.keep < 1:
            raise ConfigError(f"`keep` must be a positive integer. Received: keep={keep}")

    def call(self, inputs):
        past, vector = inputs
        steps = tf.shape(past)[1]
        tiled = tf.tile(vector[:, None, :], [1, steps, 1])  # [B, E] -> [B, L, E]
        # [B, L, keep] + [B, L, E] + [B, L, F - keep] -> [B, L, F + E]
        return tf.concat([past[:, :, :self.keep], tiled, past[:, :, self.keep:]], axis=-1)

    def compute_output_shape(self, input_shapes):
        past, vector = input_shapes
        return (past[0], past[1], past[2] + vector[-1])

    def get_config(self):
        return {**super().get_config(), "keep": self.keep}
