"""A seed ensemble (``train.ensemble``): the mean of networks trained alike from other seeds.

Networks of one setup trained from different initialisations (and dropout masks) err
differently; the mean of their forecasts varies less from seed to seed and usually scores a
little better than one of them. The ensemble is one functional Keras model that holds its
members as nested models, so it saves, loads (``safe_mode=True``), blends with the linear
baseline and serves like a single network::

    inputs -> member 1 -> [B, H, T(, Q)] ─┐
           -> member 2 -> ... ────────────┼─> Average -> [B, H, T(, Q)]
           -> member N -> ... ────────────┘

The mean of quantile forecasts keeps their order: each member's `QuantileHead` forecasts them in
increasing order, and a mean of increasing sequences increases.
"""

from __future__ import annotations

import keras


def averaged_model(members: list[keras.Model]) -> keras.Model:
    """One model forecasting the mean of ``members``' forecasts.

    Args:
        members: trained networks with the same inputs (names, shapes and order) and output
            shape; they are renamed ``<name>_member<i>`` so that the names stay unique.

    Returns:
        A functional model with the members' inputs and output shape, in float32.

    Raises:
        ValueError: fewer than two members.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs two members or more, got {len(members)}")
    first = members[0]
    name = first.name
    inputs = [keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=tensor.name.split(":")[0])
              for tensor in first.inputs]
    feed = inputs if len(inputs) > 1 else inputs[0]
    outputs = []
    for i, member in enumerate(members, start=1):
        member.name = f"{name}_member{i}"
        outputs.append(member(feed))
    mean = keras.layers.Average(dtype="float32", name="ensemble_mean")(outputs)
    return keras.Model(feed, mean, name=f"{name}_ensemble")
