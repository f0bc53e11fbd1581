"""Input paths as a pipeline step reads them.

Vertex AI Pipelines mounts Cloud Storage with Cloud Storage FUSE at ``/gcs``, so a step reads
``gs://bucket/path`` as the local file ``/gcs/bucket/path``; local paths pass through unchanged.
"""

from __future__ import annotations

from pathlib import Path

GCS_SCHEME = "gs://"
GCS_MOUNT = Path("/gcs")  # where Vertex AI mounts every bucket the job can read


def local_path(uri: str) -> Path:
    """``gs://bucket/x.csv`` -> ``/gcs/bucket/x.csv``; a local path (or ``/gcs/...``) as is.

    Raises:
        ValueError: an empty path, or a ``gs://`` URI without a bucket or an object name.
    """
    uri = uri.strip()
    if not uri:
        raise ValueError("expected a local path or gs://bucket/object, got an empty string")
    if not uri.startswith(GCS_SCHEME):
        return Path(uri)
    bucket, _, name = uri[len(GCS_SCHEME) :].partition("/")
    if not bucket or not name.strip("/"):
        raise ValueError(f"{uri!r}: expected gs://bucket/object (a bucket and an object name)")
    return GCS_MOUNT / bucket / name
