"""`forecast export MODEL --format savedmodel|tflite DIR`: the network, served outside Python."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

_console = Console(highlight=False, soft_wrap=True)


def export(
    model: str = typer.Argument(..., help="A folder saved with `forecast train --save`, or an "
                                          "MLflow model URI (models:/NAME@champion, "
                                          "runs:/ID/model)."),
    folder: Path = typer.Argument(..., help="The folder to export into (new or empty)."),
    fmt: str = typer.Option("savedmodel", "--format",
                            help="savedmodel (TensorFlow Serving), tflite (TensorFlow Lite) or "
                                 "onnx (not available: no converter supports TensorFlow 2.21)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what DIR holds."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Export the network (scaled units in and out) with its scaler and metadata beside it."""
    from forecast.cli.model_commands import _quiet_stdout
    from forecast.export import check_format, export_model

    check_format(fmt)  # before TensorFlow loads
    with _quiet_stdout(as_json):
        result = export_model(model, folder, fmt=fmt, overwrite=overwrite)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    _console.print(f"exported {model} as {result.format} to {result.folder}: "
                   f"{', '.join(f for f in result.files if '/' not in f)}")
    _console.print(f"kernel {result.kernel}; max |difference| from the Keras model "
                   f"{result.max_abs_diff:.3g} on random windows (scaled units)")
    for note in result.notes:
        _console.print(f"note: {note}")
    _console.print(f"inputs, scaling and how to run it: {Path(result.folder) / 'README.md'}")


def register(app: typer.Typer) -> None:
    """Adds `export` to the `forecast` command."""
    app.command("export")(export)
