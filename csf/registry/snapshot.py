"""The consumer's on-disk copy of each provider list, to start from when ZooKeeper is down."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from csf.registry._base import ServiceKey
from csf.registry.instance import Instance, InstanceFormatError

logger = logging.getLogger("csf.registry")

SNAPSHOT_SCHEMA = 1


def default_snapshot_dir() -> Path:
    return Path(os.environ.get("CSF_SNAPSHOT_DIR", Path.home() / ".csf" / "snapshots"))


class SnapshotStore:
    """One JSON file per service cluster; blocking, so callers run it in a thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: ServiceKey) -> Path:
        return self.directory / key.tenant / key.service / f"{key.cluster}.json"

    def save(self, key: ServiceKey, instances: Sequence[Instance]) -> None:
        document = {
            "schema": SNAPSHOT_SCHEMA,
            "saved_at": time.time(),
            "instances": [instance.to_document() for instance in instances],
        }
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves half a snapshot.
        with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False) as tmp:
            json.dump(document, tmp)
        os.replace(tmp.name, target)

    def load(self, key: ServiceKey) -> list[Instance] | None:
        """The saved list, or None when there is none or it cannot be read."""
        target = self.path(key)
        try:
            document = json.loads(target.read_bytes())
            if document.get("schema") != SNAPSHOT_SCHEMA:
                raise ValueError(f"schema {document.get('schema')!r}")
            return [Instance.from_document(item) for item in document["instances"]]
        except FileNotFoundError:
            return None
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            InstanceFormatError,
        ) as exc:
            logger.warning("ignoring unreadable snapshot %s: %s", target, exc)
            return None
