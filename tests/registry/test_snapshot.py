from pathlib import Path

from csf.registry import Instance, ServiceKey
from csf.registry.snapshot import SnapshotStore

KEY = ServiceKey("TenantA", "XIESR", "defaultCluster")


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
