"""Where the project's own folders are, defined once (standard library only)."""

from __future__ import annotations

from pathlib import Path

#: the checkout's root: ``pyproject.toml``, ``mlflow/`` (the default store), ``pipelines/``,
#: ``datasets/`` and ``.venv/`` live here when forecast runs from a checkout.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

__all__ = ["PROJECT_ROOT"]
