"""Weight warm-up: a new provider's share grows linearly from its own start time.

As Dubbo does it: weight x uptime / warmup, at least 1 so it is still tried, until the
warm-up period is over. Consumers compute it from the instance's `start_time`.
"""

from __future__ import annotations

from csf.registry.instance import Instance


def warmed_weight(instance: Instance, weight: int, now: float) -> int:
    """`weight` scaled for how far `instance` is through its warm-up at unix time `now`."""
    uptime = now - instance.start_time
    if instance.warmup <= 0 or weight <= 0 or uptime >= instance.warmup:
        return weight
    return max(1, int(weight * max(uptime, 0.0) / instance.warmup))


def warming_left(instance: Instance, now: float) -> float:
    """Seconds of warm-up still ahead of `instance` at `now` (0 when done)."""
    if instance.warmup <= 0:
        return 0.0
    return max(0.0, instance.start_time + instance.warmup - now)
