"""random: any endpoint, uniformly."""

from __future__ import annotations

import random

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "random"


class RandomPicker(SnapshotPicker):
    __slots__ = ()

    def choose(self, inv: Invocation) -> Endpoint:
        return self.endpoints[int(random.random() * len(self.endpoints))]
