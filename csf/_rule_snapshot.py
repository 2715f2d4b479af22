"""A consumer's on-disk copy of one service's rules (DESIGN section 8): read once, in a
thread, when the rules are first asked for; written in a thread after they change, saves
asked for meanwhile folded into one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from csf.registry.snapshot import SavedRule, SnapshotStore

logger = logging.getLogger("csf.rules")


class RuleSnapshot:
    def __init__(
        self,
        store: SnapshotStore,
        tenant: str,
        service: str,
        documents: Callable[[], Mapping[str, bytes]],
    ) -> None:
        """`documents()` gives the document of each rule in force when a save runs."""
        self._store = store
        self._tenant, self._service = tenant, service
        self._documents = documents
        self._loading = asyncio.ensure_future(asyncio.to_thread(store.load_rules, tenant, service))
        self._save_wanted = False
        self._saving: asyncio.Task[None] | None = None

    async def loaded(self, within: float) -> dict[str, SavedRule]:
        """The saved rules by kind (none if there is no usable snapshot), waiting up to
        `within` seconds for the read started at construction."""
        where = f"{self._tenant}/{self._service}"
        try:
            saved = await asyncio.wait_for(asyncio.shield(self._loading), max(0.0, within))
        except TimeoutError:
            logger.warning("%s: the rules snapshot was not read in time; not using it", where)
            return {}
        except Exception:  # load_rules logs what it refuses: this is a bug, not bad data
            logger.exception("%s: could not read the rules snapshot", where)
            return {}
        return saved or {}

    def save_soon(self) -> None:
        """Save the documents in force, in a thread, once the save under way (if any) ends."""
        self._save_wanted = True
        if self._saving is None:
            self._saving = asyncio.create_task(self._save())

    async def _save(self) -> None:
        try:
            while self._save_wanted:
                self._save_wanted = False
                documents = dict(self._documents())
                try:
                    await asyncio.to_thread(
                        self._store.save_rules, self._tenant, self._service, documents
                    )
                except (OSError, ValueError) as exc:
                    where = f"{self._tenant}/{self._service}"
                    logger.warning("%s: could not save the rules snapshot: %s", where, exc)
        finally:
            self._saving = None

    async def close(self) -> None:
        """Finish the save asked for, if any; stop waiting for the read."""
        self._loading.cancel()
        await asyncio.gather(self._loading, return_exceptions=True)
        if self._saving is not None:
            await self._saving
