from __future__ import annotations

from pathlib import Path

import pytest

from dq_platform.storage import LocalStorage, S3Storage, StorageError, open_storage, split_s3_uri

pytestmark = pytest.mark.unit


def test_local_roundtrip_list_delete(tmp_path: Path) -> None:
    store = open_storage(tmp_path / "bucket")
    assert isinstance(store, LocalStorage)
    assert store.list() == []
    store.write_bytes("models/baseline/manifest.json", b"{}")
    store.write_bytes("models/transformer/manifest.json", b"[]")
    store.write_bytes("dq-results/run-1/results.json", b"1")
    assert store.read_bytes("models/transformer/manifest.json") == b"[]"
    assert store.list("models/") == ["models/baseline/manifest.json", "models/transformer/manifest.json"]
    assert store.exists("dq-results/run-1/results.json")
    store.delete("dq-results/run-1/results.json")
    assert not store.exists("dq-results/run-1/results.json")
    assert store.uri("a/b") == str(tmp_path / "bucket" / "a" / "b")


def test_local_write_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    for i in range(3):
        store.write_bytes("x/y.bin", bytes([i]))
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["y.bin"]
    assert store.read_bytes("x/y.bin") == b"\x02"


def test_local_files_get_the_usual_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    LocalStorage(tmp_path).write_bytes("m/manifest.json", b"{}")
    mode = (tmp_path / "m" / "manifest.json").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044  # group and others can read (umask 022 here)


def test_local_missing_and_escaping_keys(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    with pytest.raises(StorageError, match="not found"):
        store.read_bytes("nope.json")
    with pytest.raises(StorageError, match="escapes"):
        store.write_bytes("../outside.txt", b"x")


def test_s3_uri_parsing() -> None:
    assert split_s3_uri("s3://bucket/a/b/") == ("bucket", "a/b/")
    assert split_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(StorageError, match="no bucket"):
        split_s3_uri("s3:///key")
    with pytest.raises(StorageError, match="not an s3"):
        split_s3_uri("/tmp/x")


class _RecordingS3:
    """A stub S3 client named as such: records calls so key composition can be checked offline."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []

    def put_object(self, **kw: object) -> None:
        self.calls.append(("put_object", kw))


def test_s3_keys_are_composed_under_the_prefix() -> None:
    stub = _RecordingS3()
    store = S3Storage("bucket", "models/", client=stub)  # type: ignore[arg-type]
    store.write_bytes("baseline/manifest.json", b"{}", content_type="application/json")
    assert stub.calls == [
        (
            "put_object",
            {
                "Bucket": "bucket",
                "Key": "models/baseline/manifest.json",
                "Body": b"{}",
                "ContentType": "application/json",
            },
        )
    ]
    assert store.uri("baseline/manifest.json") == "s3://bucket/models/baseline/manifest.json"
