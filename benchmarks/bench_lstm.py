"""Train-step time of forecast.layers.LSTM (or GRU) against its peers, in one process.

Model: LSTM(units) -> Dense(horizon), MSE, Adam. Time = median ms of `train_on_batch` (forward,
backward and the Adam update) after warm-up, at three shapes (batch, steps, features, units,
horizon). Peers: keras.layers.LSTM, the same with `jit_compile=True`, and torch.nn.LSTM when
torch is installed (its column is skipped otherwise). With `--layer gru`: forecast.layers.GRU
against keras.layers.GRU (reset_after=True, the default) and torch.nn.GRU. With `--layer
peephole`: forecast.layers.LSTM(peephole=True) against the same plain-LSTM peers (neither Keras
nor torch has a peephole LSTM), which shows what the peepholes cost.

The TensorFlow models are timed in turns, so that load spikes hit all alike; torch is timed on its
own afterwards, because its OpenMP threads keep spinning for a while after each step and took
the cores from whichever model ran next (measured: that model's step 3.6 -> 5.7 ms at small).

Prints one row per shape with each time, our ratio against keras and against the best peer
(ratio = peer time / our time; > 1 means we are faster); the last line is the headline: the
smallest ratio against keras over the shapes.

    python benchmarks/bench_lstm.py [--repeats 30] [--shapes small,mid,big]
                                     [--layer lstm|gru|peephole]
"""

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from forecast.layers import GRU, LSTM  # noqa: E402

SHAPES = {  # name: (batch, steps, features, units, horizon)
    "small": (32, 48, 1, 32, 12),
    "mid": (64, 96, 7, 64, 24),
    "big": (256, 96, 7, 128, 96),
}


LAYERS = {  # ours, keras peer
    "lstm": (LSTM, keras.layers.LSTM),
    "gru": (GRU, keras.layers.GRU),
    "peephole": (functools.partial(LSTM, peephole=True), keras.layers.LSTM),
}


def _data(batch, steps, features, horizon, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    y = rng.normal(size=(batch, horizon)).astype("float32")
    return x, y


def keras_step(layer, shape, jit_compile=False):
    """A train_on_batch closure for LSTM-like layer -> Dense(horizon)."""
    batch, steps, features, units, horizon = shape
    x, y = _data(batch, steps, features, horizon)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((steps, features)), layer, keras.layers.Dense(horizon)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit_compile)
    return lambda: model.train_on_batch(x, y)


def torch_step(shape, layer="lstm"):
    """The same model and step in torch (forward, backward, Adam); None without torch."""
    try:
        import torch
    except ImportError:
        return None
    batch, steps, features, units, horizon = shape
    x, y = (torch.from_numpy(a) for a in _data(batch, steps, features, horizon))
    torch.manual_seed(0)
    rnn = (torch.nn.GRU if layer == "gru" else torch.nn.LSTM)(features, units, batch_first=True)
    head = torch.nn.Linear(units, horizon)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
        loss.backward()
        opt.step()

    return step


def time_round_robin(steps, repeats, warmup):
    """Median ms per step of each closure, timed in turns so that load spikes hit all alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--shapes", default="small,mid,big")
    parser.add_argument("--layer", choices=sorted(LAYERS), default="lstm")
    args = parser.parse_args(argv)

    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
        print("torch is not installed: the torch column is skipped.")

    header = f"{'shape (B,T,D,H,horizon)':<28}{'ours':>9}{'ours+jit':>10}{'keras':>9}"
    header += f"{'keras+jit':>11}" + (f"{'torch':>9}" if has_torch else "")
    header += f"{'plain':>8}{'jit':>7}{'vs best':>9}"
    print("train_on_batch ms/step (median); ratios = peer / ours (> 1: we are faster):")
    print("  plain = keras / ours (both models compiled plainly), jit = keras+jit / ours+jit "
          "(both with jit_compile=True), vs best = fastest peer / our faster variant")
    print(header)
    ours_cls, peer_cls = LAYERS[args.layer]
    ratios_keras = []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        units = shape[3]
        steps = {
            "ours": keras_step(ours_cls(units), shape),
            "ours+jit": keras_step(ours_cls(units), shape, jit_compile=True),
            "keras": keras_step(peer_cls(units), shape),
            "keras+jit": keras_step(peer_cls(units), shape, jit_compile=True),
        }
        repeats = max(5, args.repeats // 3) if name == "big" else args.repeats
        ms = time_round_robin(steps, repeats, args.warmup)
        if has_torch:
            torch_peer = {"torch": torch_step(shape, args.layer)}
            ms.update(time_round_robin(torch_peer, repeats, args.warmup))
        ours, ours_jit = ms.pop("ours"), ms.pop("ours+jit")
        row = f"{name + ' ' + str(shape):<28}{ours:>9.1f}{ours_jit:>10.1f}"
        row += "".join(f"{ms[k]:>{w}.1f}" for k, w in (("keras", 9), ("keras+jit", 11)))
        row += f"{ms['torch']:>9.1f}" if has_torch else ""
        plain, jit = ms["keras"] / ours, ms["keras+jit"] / ours_jit
        ratios_keras.append(min(plain, jit))
        row += f"{plain:>7.2f}x{jit:>6.2f}x{min(ms.values()) / min(ours, ours_jit):>8.2f}x"
        print(row, flush=True)
    print(f"headline: smallest ratio vs keras.layers.{peer_cls.__name__} (plain vs plain, jit vs "
          f"jit) over the shapes: {min(ratios_keras):.2f}x")


if __name__ == "__main__":
    main()
