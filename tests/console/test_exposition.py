"""Reading a provider's /metrics text: one service's calls, errors, durations and breaker."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from csf.console.exposition import MAX_BOUNDS, MAX_COUNT, Reading, read

LABELS = 'csf_service="{service}",rpc_method="SayHello",rpc_grpc_status_code="{code}"'


def calls(value: float, code: int = 0, service: str = "XIESR") -> str:
    labels = LABELS.format(service=service, code=code)
    return f"csf_server_calls_total{{{labels}}} {value}\n"


def bucket(le: str, value: float, service: str = "XIESR") -> str:
    labels = LABELS.format(service=service, code=0)
    return f'csf_server_duration_seconds_bucket{{{labels},le="{le}"}} {value}\n'


def breaker(state: float, method: str = "SayHello", service: str = "XIESR") -> str:
    return f'csf_client_breaker_state{{csf_service="{service}",rpc_method="{method}"}} {state}\n'


COUNTER = "# TYPE csf_server_calls_total counter\n"
HISTOGRAM = "# TYPE csf_server_duration_seconds histogram\n"


def test_calls_of_every_code_count_and_those_not_ok_are_errors() -> None:
    text = COUNTER + calls(7) + calls(2, code=14) + calls(1, code=5)
    reading = read(text, "XIESR")
    assert reading is not None
    assert (reading.calls, reading.errors) == (10, 3)


def test_only_the_service_asked_for_counts() -> None:
    text = COUNTER + calls(7) + calls(100, service="OTHER") + calls(5, code=2, service="OTHER")
    assert read(text, "XIESR") == Reading(7, 0, {}, None)


def test_duration_buckets_are_summed_by_bound_across_methods_and_codes() -> None:
    text = (
        HISTOGRAM + bucket("0.005", 1) + bucket("+Inf", 3) + bucket("0.005", 2) + bucket("+Inf", 2)
    )
    reading = read(text, "XIESR")
    assert reading is not None
    assert reading.buckets == {0.005: 3, math.inf: 5}


def test_the_breaker_is_the_worst_state_of_the_service_s_methods_and_absent_is_none() -> None:
    reading = read(breaker(0) + breaker(1, "Other") + breaker(2, service="OTHER"), "XIESR")
    assert reading is not None and reading.breaker == 1
    assert read(calls(1), "XIESR") == Reading(1, 0, {}, None)


def test_values_no_counter_can_have_are_skipped_and_huge_ones_clamped() -> None:
    text = calls(float("nan")) + calls(-3) + calls(float("inf"), code=1) + calls(1e300, code=2)
    assert read(text, "XIESR") == Reading(MAX_COUNT, MAX_COUNT, {}, None)
    assert read(breaker(7) + breaker(0.5), "XIESR") == Reading(0, 0, {}, None)


def test_text_that_is_not_prometheus_text_reads_as_none() -> None:
    assert read('csf_server_calls_total{csf_service="XIESR" 1\n', "XIESR") is None
    assert read("<html>not metrics</html>", "XIESR") is None


@st.composite
def metrics_texts(draw: st.DrawFn) -> str:
    """Texts that are nearly CSF's: its names and labels with hostile values, and junk."""
    line = st.one_of(
        st.builds(
            calls, st.floats(allow_nan=True), st.integers(-5, 20), st.sampled_from(["XIESR", "X"])
        ),
        st.builds(
            bucket,
            st.text(max_size=12) | st.sampled_from(["+Inf", "-1", "NaN", "1e400"]),
            st.floats(),
        ),
        st.builds(breaker, st.floats()),
        st.text(max_size=80).map(lambda t: t + "\n"),
        st.sampled_from([COUNTER, HISTOGRAM, "# TYPE x summary\n", "# HELP\n", "#\n", "{}\n"]),
    )
    return "".join(draw(st.lists(line, max_size=30)))


@settings(max_examples=400, deadline=None)
@given(text=metrics_texts() | st.text(max_size=500))
@example(text=bucket("0.1", 1) * 2 + "".join(bucket(str(i), 1) for i in range(200)))
@example(text='a{le="1"} 1 2 3\n')
@example(text='# TYPE a histogram\na_bucket{le="x"} 1\n')
def test_any_text_reads_as_bounded_figures_or_none(text: str) -> None:
    reading = read(text, "XIESR")
    if reading is None:
        return
    assert 0 <= reading.errors <= reading.calls <= MAX_COUNT
    assert len(reading.buckets) <= MAX_BOUNDS
    assert all(b >= 0 and 0 <= c <= MAX_COUNT for b, c in reading.buckets.items())
    assert reading.breaker in (None, 0, 1, 2)
