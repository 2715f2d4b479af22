"""Peak-EWMA latency: a slower observation counts at once, faster ones decay in."""

import math

from csf.resilience.latency import DECAY_SECONDS, PeakEwma


def test_a_slower_call_counts_at_once_and_faster_ones_decay_in() -> None:
    latency = PeakEwma()
    assert latency.value == 0.0, "nothing seen yet"
    latency.observe(0.010, now=100.0)
    assert latency.value == 0.010
    latency.observe(0.200, now=100.1)
    assert latency.value == 0.200, "a slower call is the peak at once"
    latency.observe(0.010, now=100.1 + DECAY_SECONDS)
    keep = math.exp(-1.0)  # one time constant later
    assert math.isclose(latency.value, 0.200 * keep + 0.010 * (1 - keep))
    before = latency.value
    latency.observe(0.010, now=100.1 + DECAY_SECONDS)  # no time passed: no decay
    assert math.isclose(latency.value, before)
