"""Pipeline input paths: gs:// URIs are read at Vertex AI's Cloud Storage FUSE mount."""

from __future__ import annotations

from pathlib import Path

import pytest

from lr_recsys.data.paths import local_path


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("gs://my-bucket/exports/ratings.csv", "/gcs/my-bucket/exports/ratings.csv"),
        ("  gs://b/x.csv ", "/gcs/b/x.csv"),
        ("/gcs/b/x.csv", "/gcs/b/x.csv"),  # already the mount: unchanged
        ("data/x.csv", "data/x.csv"),
        ("/tmp/x.parquet", "/tmp/x.parquet"),
    ],
)
def test_gcs_uris_map_to_the_mount_and_local_paths_pass_through(uri, path):
    assert local_path(uri) == Path(path)


@pytest.mark.parametrize("uri", ["gs://", "gs://bucket", "gs://bucket/", "gs:///x.csv", " "])
def test_incomplete_uris_are_named(uri):
    with pytest.raises(ValueError, match="expected"):
        local_path(uri)
