import json
import os
import stat
import time
from pathlib import Path

import pytest

from csf.registry import Instance, ServiceKey
from csf.registry.snapshot import MAX_SNAPSHOT_AGE, SnapshotStore

KEY = ServiceKey("TenantA", "XIESR", "defaultCluster")
VALID = Instance(host="127.0.0.1", port=1)


def test_save_then_load_gives_the_same_list(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    instances = [Instance(host="127.0.0.1", port=port, weight=port) for port in (1, 2, 3)]
    store.save(KEY, instances)
    assert store.load(KEY) == instances
    assert store.path(KEY) == tmp_path / "TenantA" / "XIESR" / "defaultCluster.json"


def test_missing_or_corrupt_snapshots_load_as_none(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    assert store.load(KEY) is None
    store.path(KEY).parent.mkdir(parents=True)
    for garbage in (b"{", b'{"schema": 9, "instances": []}', b'{"schema": 1}', b"[]"):
        store.path(KEY).write_bytes(garbage)
        assert store.load(KEY) is None


def test_a_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    for _ in range(3):
        store.save(KEY, [Instance(host="127.0.0.1", port=1)])
    assert [p.name for p in store.path(KEY).parent.iterdir()] == ["defaultCluster.json"]


def write(store: SnapshotStore, document: object) -> None:
    store.path(KEY).parent.mkdir(parents=True, exist_ok=True)
    store.path(KEY).write_text(json.dumps(document))


def saved_at(when: float) -> dict[str, object]:
    return {"schema": 1, "saved_at": when, "instances": [VALID.to_document()]}


def test_a_snapshot_older_than_the_maximum_age_or_from_the_future_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(tmp_path)
    write(store, saved_at(time.time() - MAX_SNAPSHOT_AGE + 60))
    assert store.load(KEY) == [VALID]
    write(store, saved_at(time.time() - MAX_SNAPSHOT_AGE - 60))
    assert store.load(KEY) is None
    assert "ignoring snapshot" in caplog.text and "saved 168 hours ago" in caplog.text
    write(store, saved_at(time.time() + 3600))
    assert store.load(KEY) is None
    for when in (True, "now", None):
        write(store, saved_at(when))  # type: ignore[arg-type]
        assert store.load(KEY) is None


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(KEY, [VALID])
    unwritable = Instance(host="127.0.0.1", port=2, tags={"x": object()})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        store.save(KEY, [unwritable])
    assert [p.name for p in store.path(KEY).parent.iterdir()] == ["defaultCluster.json"]
    assert store.load(KEY) == [VALID]  # the last good snapshot stays


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.path(KEY).mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(OSError):
        store.save(KEY, [VALID])
    assert [p.name for p in store.path(KEY).parent.iterdir()] == ["defaultCluster.json"]


def test_the_directories_a_save_creates_are_private(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "csf" / "snapshots")
    store.save(KEY, [VALID])
    created = [store.path(KEY).parent, store.path(KEY).parent.parent, store.directory]
    for directory in [*created, tmp_path / "csf"]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


@pytest.mark.parametrize("level", ["root", "service"])
def test_snapshots_under_a_directory_others_may_write_are_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, level: str
) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    store.save(KEY, [VALID])
    loose = store.directory if level == "root" else store.path(KEY).parent
    loose.chmod(0o777)
    assert store.load(KEY) is None
    assert store.load(KEY) is None
    assert caplog.text.count("not reading snapshots from") == 1  # warned once
    assert f"{loose}: it is writable by group or others (mode 777)" in caplog.text
    loose.chmod(0o700)
    assert store.load(KEY) == [VALID]


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a directory to another user")
def test_snapshots_under_a_directory_another_user_owns_are_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    store.save(KEY, [VALID])
    os.chown(store.path(KEY).parent, 4321, -1)
    assert store.load(KEY) is None
    assert "owned by uid 4321" in caplog.text
