"""The data watermark of a pipeline run: what the input file held, and whether it changed.

A run records the watermark as tags (``watermark.sha256``: the SHA-256 of the input file's bytes,
``watermark.last_timestamp``: the last timestamp in it) beside ``pipeline.name`` and
``pipeline.spec_sha256`` (a hash of the validated pipeline settings, schedule excluded). The
next run of the pipeline is skipped when the last FINISHED run of that pipeline has the same file
hash and the same settings: nothing new to learn from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TAG_NAME = "pipeline.name"
TAG_FILE = "pipeline.file"
TAG_SPEC = "pipeline.spec_sha256"
TAG_SHA256 = "watermark.sha256"
TAG_LAST_TIMESTAMP = "watermark.last_timestamp"


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Watermark:
    """The state of the input data a run trained on."""

    sha256: str
    last_timestamp: str | None = None

    def tags(self) -> dict[str, str]:
        tags = {TAG_SHA256: self.sha256}
        if self.last_timestamp is not None:
            tags[TAG_LAST_TIMESTAMP] = self.last_timestamp
        return tags


def last_finished_run(name: str, experiment: str):
    """The most recent FINISHED MLflow run of the pipeline ``name`` (or None).

    Uses the tracking store ``forecast.tracking.mlflow.use_store`` points MLflow at.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from forecast.tracking.mlflow import use_store

    use_store()
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return None
    escaped = name.replace("'", "\\'")
    runs = MlflowClient().search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{TAG_NAME}` = '{escaped}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def unchanged_since(run, sha256: str, spec_digest: str) -> bool:
    """Whether ``run`` trained on the same file bytes with the same settings."""
    if run is None:
        return False
    tags = run.data.tags
    return tags.get(TAG_SHA256) == sha256 and tags.get(TAG_SPEC) == spec_digest

