"""Exporting a trained forecaster's network for serving outside Python.

``export_model(source, folder, format=...)`` writes the Keras network — instance
normalisation, channel handling, the setup and its head, all inside the network — as

- ``savedmodel``: a TensorFlow SavedModel (``saved_model.pb``, ``variables/``) whose
  ``serving_default`` signature takes the history window ``past`` (batch, lookback, features)
  and, for setups that read known-future inputs, ``future`` (batch, horizon, future features),
  float32 in scaled units, and returns ``forecast`` (batch, horizon, targets[, quantiles]) in
  scaled units. TensorFlow Serving, ``tf.saved_model.load`` or any TensorFlow runtime runs it
  without the ``forecast`` package.
- ``tflite``: ``model.tflite`` for TensorFlow Lite (LiteRT), TFLite built-in ops only, one
  window per call (batch 1).
- ``onnx``: refused with a ``ConfigError``; no maintained converter supports TensorFlow 2.21 and
  Keras 3 (``ONNX_UNSUPPORTED`` says why).

Beside the model: ``scaler.json`` (the training-part statistics, ``Scaler.to_json``),
``metadata.json`` (column order, lookback, horizon, frequency, the calendar features, how to
scale inputs and unscale forecasts, the recurrent kernel traced, and the export's own check
against the Keras model) and ``README.md`` saying the same in words.

The recurrent layers choose their kernel when traced (``forecast.layers.base``): a SavedModel
is traced with the fused CPU kernel (the cuDNN op would tie it to a GPU), a TFLite model with
the general loop kernel, whose per-step tensors have static shapes at batch 1 (the fused
kernel's XLA loop keeps a tensor list of dynamic shape, which the TFLite built-in ops cannot
lower).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from forecast.errors import ConfigError, ModelError

FORMATS = ("savedmodel", "tflite", "onnx")
SCALER_FILE = "scaler.json"
METADATA_FILE = "metadata.json"
README_FILE = "README.md"
TFLITE_FILE = "model.tflite"
#: the signature name of the SavedModel and of the TFLite model
SIGNATURE = "serving_default"
#: the output key of both signatures
OUTPUT = "forecast"
#: random windows (scaled units) the export runs through the exported model and the Keras model
CHECK_WINDOWS = 8

ONNX_UNSUPPORTED = (
    "--format onnx is not available: no maintained converter supports TensorFlow 2.21 with "
    "Keras 3. tf2onnx (onnx/tensorflow-onnx), the TensorFlow-to-ONNX converter, is at 1.17.0, "
    "tested on TensorFlow 2.13-2.15 only, its Keras 3 support is an open issue (#2329) and pull "
    "request (#2398), and the project is looking for a maintainer. Export a SavedModel "
    "(--format savedmodel) for TensorFlow Serving, or a TFLite model (--format tflite)."
)

# how each calendar cycle (forecast.data.calendar) positions a timestamp; the feature pair is
# sin/cos(2*pi*position/period)
_CYCLE_POSITIONS = {
    "hour_of_day": "hour + minute / 60",
    "day_of_week": "weekday, Monday = 0",
    "day_of_month": "day of the month - 1",
    "day_of_year": "day of the year - 1",
    "month_of_year": "month - 1",
}


@dataclass
class ExportResult:
    """What ``export_model`` wrote.

    Attributes:
        folder: the export folder.
        format: ``savedmodel`` or ``tflite``.
        files: the files written, relative to ``folder``.
        kernel: the recurrent kernel traced into the exported model (``fused``, ``loop`` or
            ``none`` for a network without recurrent layers).
        max_abs_diff: the largest difference between the exported model's forecasts and the
            Keras model's on ``CHECK_WINDOWS`` random windows (scaled units).
        notes: anything the user should know (a fallback taken, a batch size fixed).
    """

    folder: str
    format: str
    files: list[str]
    kernel: str
    max_abs_diff: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def check_format(fmt: str) -> str:
    """The export format, refused when unknown or not available (``onnx``).

    Raises:
        ConfigError: not one of ``FORMATS``, or ``onnx`` (``ONNX_UNSUPPORTED``).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}. Received: {fmt!r}.")
    if fmt == "onnx":
        raise ConfigError(ONNX_UNSUPPORTED)
    return fmt


def load_forecaster(source: str):
    """The fitted forecaster saved at ``source``, and the time column's name when known.

    Args:
        source: a folder written by ``Forecaster.save`` (``forecast train --save``), or an MLflow
            model URI (``models:/NAME@champion``, ``runs:/RUN_ID/model``, a logged model
            folder), loaded through ``forecast.serving.load_model``, which checks its code first.

    Returns:
        ``(forecaster, time_col)``; ``time_col`` is None for a saved folder.

    Raises:
        ModelError: nothing loadable there, or a model whose code forecast did not write.
    """
    from forecast.forecaster import Forecaster, holds_forecaster

    local = Path(str(source)).expanduser()
    if local.is_dir() and holds_forecaster(local):
        return Forecaster.load(local), None
    from forecast.serving.load import load_model

    model = load_model(str(source))
    wrapped = model.unwrap_python_model()
    forecaster = getattr(wrapped, "forecaster", None)
    if forecaster is None:
        raise ModelError(f"{source}: the MLflow model holds no forecaster; pass a model logged "
                         "by forecast (forecast train) or a folder saved with --save.")
    info = getattr(wrapped, "info", None)
    return forecaster, getattr(info, "time_col", None)


def _recurrent_layers(model) -> list:
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if hasattr(layer, "_choose_kernel") and hasattr(layer, "kernel_used")]


@contextlib.contextmanager
def traced_with(model, kernel: str):
    """Makes every recurrent layer of ``model`` trace ``kernel`` while the block runs.

    Args:
        model: a Keras model built from ``forecast.layers``.
        kernel: ``"fused"`` (the CPU kernel; the general loop where a layer's settings need
            it) or ``"loop"`` (the general loop everywhere). Never cuDNN: an exported model must
            not need a GPU.

    Yields:
        The kernels the layers traced (a set, filled in as they trace).

    The layers' own kernel choice and their ``kernel_used``/``kernel_reason`` are restored
    afterwards.
    """
    used: set[str] = set()
    layers = _recurrent_layers(model)
    saved = [(layer, layer.kernel_used, layer.kernel_reason) for layer in layers]

    def chooser(layer):
        def choose(mask, training):
            if kernel == "fused" and not layer._fused_blockers(training):
                used.add("fused")
                return "fused", "export: the fused CPU kernel"
            used.add("loop")
            return "loop", "export: the general loop kernel"
        return choose

    for layer in layers:
        object.__setattr__(layer, "_choose_kernel", chooser(layer))
    try:
        yield used
    finally:
        for layer, kernel_used, reason in saved:
            with contextlib.suppress(AttributeError):
                object.__delattr__(layer, "_choose_kernel")
            layer.kernel_used, layer.kernel_reason = kernel_used, reason


def _input_specs(model, batch: int | None):
    import tensorflow as tf

    return [tf.TensorSpec((batch, *tuple(t.shape[1:])), tf.float32, name=t.name.split(":")[0])
            for t in model.inputs]


def _write_savedmodel(model, folder: Path, *, kernel: str, batch: int | None) -> set[str]:
    """Traces ``model`` into a SavedModel at ``folder``; returns the kernels traced."""
    import keras

    specs = _input_specs(model, batch)
    archive = keras.export.ExportArchive()
    archive.track(model)
    with traced_with(model, kernel) as used:
        if len(specs) == 1:
            def serve(past):
                return {OUTPUT: model(past, training=False)}  # [B, L, F] -> [B, H, T(, Q)]
        else:
            def serve(past, future):
                return {OUTPUT: model([past, future], training=False)}  # -> [B, H, T(, Q)]
        archive.add_endpoint(SIGNATURE, serve, input_signature=specs)
        archive.write_out(str(folder), verbose=False)
    return set(used) or {"none"}


def _check_windows(model, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name.split(":")[0]: rng.normal(size=(batch, *tuple(t.shape[1:]))).astype("float32")
            for t in model.inputs}


def _keras_forecast(model, windows: dict[str, np.ndarray]) -> np.ndarray:
    values = list(windows.values())
    return np.asarray(model(values if len(values) > 1 else values[0], training=False))


def _check_savedmodel(model, folder: Path) -> float:
    import tensorflow as tf

    windows = _check_windows(model, CHECK_WINDOWS)
    loaded = tf.saved_model.load(str(folder))
    out = loaded.signatures[SIGNATURE](**{k: tf.constant(v) for k, v in windows.items()})
    return float(np.max(np.abs(out[OUTPUT].numpy() - _keras_forecast(model, windows))))


def run_tflite(content: bytes, windows: dict[str, np.ndarray]) -> np.ndarray:
    """Runs a TFLite model exported here on ``windows`` (inputs by name, batch 1 each call)."""
    import tensorflow as tf

    with warnings.catch_warnings():  # it warns that LiteRT's ai_edge_litert replaces it
        warnings.simplefilter("ignore")
        runner = tf.lite.Interpreter(model_content=content).get_signature_runner(SIGNATURE)
    batch = len(next(iter(windows.values())))
    outs = [runner(**{k: v[i:i + 1] for k, v in windows.items()})[OUTPUT] for i in range(batch)]
    return np.concatenate(outs, axis=0)


def _write_tflite(model, folder: Path) -> tuple[set[str], list[str], float]:
    """Converts ``model`` to ``folder/model.tflite``; returns (kernels, notes, check diff)."""
    import tensorflow as tf

    notes = ["TFLite: one window per call (batch 1), traced with the general loop kernel: the "
             "fused kernel's XLA loop keeps a tensor list of dynamic shape that TFLite built-in "
             "ops cannot lower."]
    with tempfile.TemporaryDirectory(prefix="forecast-tflite-") as tmp:
        used = _write_savedmodel(model, Path(tmp) / "saved_model", kernel="loop", batch=1)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved_model"))
        try:
            content = converter.convert()
        except Exception as exc:  # the converter raises its own ConverterError and others
            first = " ".join(str(exc).split())[:300]
            converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved_model"))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                                   tf.lite.OpsSet.SELECT_TF_OPS]
            converter._experimental_lower_tensor_list_ops = False
            try:
                content = converter.convert()
            except Exception as again:
                raise ModelError(
                    "the network cannot be converted to TFLite, even with TensorFlow ops "
                    f"(SELECT_TF_OPS): {' '.join(str(again).split())[:300]}. Export a "
                    "SavedModel (--format savedmodel) instead.") from None
            notes.append("TFLite built-in ops could not express the network "
                         f"({first}); it uses TensorFlow ops (SELECT_TF_OPS), so the runtime "
                         "needs the Flex delegate (tensorflow-lite-select-tf-ops).")
    (folder / TFLITE_FILE).write_bytes(content)
    windows = _check_windows(model, CHECK_WINDOWS)
    try:
        diff = float(np.max(np.abs(run_tflite(content, windows) - _keras_forecast(model,
                                                                                   windows))))
    except (RuntimeError, ValueError) as exc:  # e.g. a Flex model in an interpreter without it
        diff = float("nan")
        notes.append(f"the TFLite model could not be run here to check it ({exc}).")
    return used, notes, diff


def _metadata(forecaster, *, fmt: str, source: str | None, time_col: str | None,
              kernel: str, diff: float, notes: list[str]) -> dict:
    import forecast
    from forecast.data.calendar import _CYCLES, calendar_cycles

    spec, scaler = forecaster.spec, forecaster.scaler
    model = forecaster.model
    inputs = {
        "past": {"shape": [None, spec.lookback, spec.n_inputs], "dtype": "float32",
                 "columns": list(spec.input_columns)},
    }
    if spec.n_future:
        inputs["future"] = {"shape": [None, spec.horizon, spec.n_future], "dtype": "float32",
                            "columns": list(spec.future_covariates)}
    out_shape = [None, spec.horizon, spec.n_targets]
    if forecaster.quantiles:
        out_shape.append(len(forecaster.quantiles))
    if fmt == "tflite":
        for entry in inputs.values():
            entry["shape"][0] = 1
        out_shape[0] = 1
    cycles = {}
    if spec.future_covariates and forecaster.freq:
        for cycle in calendar_cycles(forecaster.freq):
            cycles[cycle] = {"position": _CYCLE_POSITIONS.get(cycle, cycle),
                             "period": _CYCLES[cycle][1],
                             "columns": [f"{cycle}_sin", f"{cycle}_cos"]}
    return {
        "format": fmt,
        "file": TFLITE_FILE if fmt == "tflite" else "saved_model.pb",
        "signature": SIGNATURE,
        "forecast_version": forecast.__version__,
        "source": source,
        "setup": forecaster.config.setup,
        "lookback": spec.lookback,
        "horizon": spec.horizon,
        "freq": forecaster.freq,
        "time_col": time_col,
        "targets": list(spec.targets),
        "past_covariates": list(spec.past_covariates),
        "future_covariates": list(spec.future_covariates),
        "quantiles": list(forecaster.quantiles) if forecaster.quantiles else None,
        "inputs": inputs,
        "outputs": {OUTPUT: {"shape": out_shape, "dtype": "float32",
                             "columns": list(spec.targets),
                             "quantiles": list(forecaster.quantiles)
                             if forecaster.quantiles else None}},
        "scaling": {
            "file": SCALER_FILE,
            "kind": scaler.kind,
            "columns": list(scaler.columns),
            "scale": "z = (x - center) / scale, per column, center and scale from scaler.json "
                     "(params.__all__); the calendar columns are not scaled",
            "unscale": "x = z * scale + center, with the target columns' center and scale",
        },
        "calendar": {
            "cycles": cycles,
            "formula": "sin and cos of 2 * pi * position / period, at each timestamp: the "
                       "lookback's for `past`, the horizon's for `future`",
        },
        "network": {"name": model.name, "parameters": int(model.count_params())},
        "kernel": kernel,
        "check": {"windows": CHECK_WINDOWS, "max_abs_diff": diff,
                  "against": "the Keras model, on random windows in scaled units"},
        "notes": notes,
    }


def _readme(meta: dict) -> str:
    past = meta["inputs"]["past"]
    source = f"`{meta['source']}`" if meta["source"] else "a Forecaster in Python"
    lines = [
        f"# Exported forecaster ({meta['format']})",
        "",
        f"Exported by forecast {meta['forecast_version']} from {source}: the "
        f"`{meta['setup']}` network forecasting {meta['horizon']} steps of "
        f"{', '.join(meta['targets'])} from the last {meta['lookback']} steps "
        f"(frequency `{meta['freq']}`).",
        "",
        "## Inputs (float32, scaled units)",
        "",
        f"- `past` {past['shape']}: the last {meta['lookback']} rows, columns in this order: "
        f"{', '.join(past['columns'])}.",
    ]
    if "future" in meta["inputs"]:
        future = meta["inputs"]["future"]
        lines.append(f"- `future` {future['shape']}: the calendar features of the "
                     f"{meta['horizon']} timestamps to forecast: {', '.join(future['columns'])}.")
    if meta["calendar"]["cycles"]:
        lines += ["", "Calendar features (`<cycle>_sin`, `<cycle>_cos` = sin/cos of "
                      "2·π·position/period, not scaled):", ""]
        lines += [f"- {name}: position {c['position']}, period {c['period']:g}"
                  for name, c in meta["calendar"]["cycles"].items()]
    lines += [
        "",
        "## Output",
        "",
        f"`{OUTPUT}` {meta['outputs'][OUTPUT]['shape']}: the forecast of "
        f"{', '.join(meta['targets'])}"
        + (f" at quantiles {meta['quantiles']}" if meta["quantiles"] else "")
        + ", in scaled units.",
        "",
        "## Scaling",
        "",
        f"`{SCALER_FILE}` holds the {meta['scaling']['kind']} scaler fitted on the training part: "
        f"for each of {', '.join(meta['scaling']['columns'])}, `center` and `scale` "
        "(`params.__all__`, in that column order).",
        "",
        f"- before: {meta['scaling']['scale']}",
        f"- after: {meta['scaling']['unscale']}",
        "",
        "Instance normalisation and channel handling are inside the network.",
        "",
        "## Running it",
        "",
    ]
    if meta["format"] == "savedmodel":
        lines += [
            "```python",
            "import tensorflow as tf",
            "model = tf.saved_model.load(\"THIS_FOLDER\")",
            f"forecast = model.signatures[\"{SIGNATURE}\"](past=past)[\"{OUTPUT}\"]"
            if "future" not in meta["inputs"] else
            f"forecast = model.signatures[\"{SIGNATURE}\"](past=past, future=future)"
            f"[\"{OUTPUT}\"]",
            "```",
            "",
            "TensorFlow Serving: copy this folder to `MODEL_BASE/1/`.",
        ]
    else:
        lines += [
            "```python",
            "from ai_edge_litert.interpreter import Interpreter   # or tf.lite.Interpreter",
            f"runner = Interpreter(model_path=\"{TFLITE_FILE}\").get_signature_runner()",
            f"forecast = runner(past=past)[\"{OUTPUT}\"]            # one window per call",
            "```",
        ]
    lines += ["", f"Recurrent kernel traced: {meta['kernel']}. Check against the Keras model: "
                  f"max |difference| {meta['check']['max_abs_diff']:.3g} on "
                  f"{meta['check']['windows']} random windows."]
    lines += [f"\nNote: {note}" for note in meta["notes"]]
    return "\n".join(lines) + "\n"


def _check_target(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ModelError(f"{folder}: is a file, not a folder; pass a new or empty folder to "
                         "export into.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ModelError(f"{folder}: is not empty; pass a new or empty folder, or --overwrite "
                         "to replace what is there.")


def export_forecaster(forecaster, folder, *, fmt: str = "savedmodel", overwrite: bool = False,
                      source: str | None = None, time_col: str | None = None) -> ExportResult:
    """Exports a fitted forecaster's network, scaler and metadata into ``folder``.

    Args:
        forecaster: a fitted ``Forecaster`` with a network (not a baseline).
        folder: the export folder (created; must be new or empty unless ``overwrite``).
        fmt: ``"savedmodel"`` or ``"tflite"`` (``"onnx"`` is refused).
        overwrite: replace the folder's contents.
        source: where the forecaster came from, recorded in the metadata.
        time_col: the time column's name, recorded in the metadata when known.

    Returns:
        An ``ExportResult``.

    Raises:
        ConfigError: an unknown or unavailable format.
        ModelError: not fitted, a baseline, an unusable folder, or a failed conversion.

    Example:
        >>> export_forecaster(Forecaster.load("models/sales"), "export/sales")
        >>> tf.saved_model.load("export/sales").signatures["serving_default"](past=window)
    """
    from forecast.options import NETWORK

    fmt = check_format(fmt)
    if forecaster.model is None:
        raise ModelError("the forecaster is not fitted: fit or load one before exporting.")
    if forecaster.kind != NETWORK:
        raise ModelError(f"this forecaster is the {forecaster.kind} baseline (it won the "
                         "backtest), not a network: there is no model to export. Export a "
                         "forecaster whose model is a network.")
    folder = Path(folder)
    _check_target(folder, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.exporting-", dir=folder.parent))
    try:
        model = forecaster.model
        notes: list[str] = []
        if fmt == "savedmodel":
            shutil.rmtree(staging)  # the SavedModel writer makes the folder
            used = _write_savedmodel(model, staging, kernel="fused", batch=None)
            diff = _check_savedmodel(model, staging)
        else:
            used, notes, diff = _write_tflite(model, staging)
        kernel = ",".join(sorted(used))
        (staging / SCALER_FILE).write_text(forecaster.scaler.to_json())
        meta = _metadata(forecaster, fmt=fmt, source=source, time_col=time_col, kernel=kernel,
                         diff=diff, notes=notes)
        (staging / METADATA_FILE).write_text(json.dumps(meta, indent=1))
        (staging / README_FILE).write_text(_readme(meta))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return ExportResult(folder=str(folder), format=fmt, files=files, kernel=kernel,
                        max_abs_diff=diff, notes=notes)


def export_model(source, folder, *, fmt: str = "savedmodel",
                 overwrite: bool = False) -> ExportResult:
    """Loads the forecaster at ``source`` (``load_forecaster``) and exports it.

    Args:
        source: a saved forecaster folder or an MLflow model URI.
        folder, fmt, overwrite: as for ``export_forecaster``.

    Returns:
        An ``ExportResult``.

    Raises:
        ConfigError: an unknown or unavailable format (checked before anything loads).
        ModelError: see ``load_forecaster`` and ``export_forecaster``.
    """
    check_format(fmt)
    _check_target(Path(folder), overwrite)
    forecaster, time_col = load_forecaster(source)
    return export_forecaster(forecaster, folder, fmt=fmt, overwrite=overwrite,
                             source=str(source), time_col=time_col)
