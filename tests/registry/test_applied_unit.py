"""The applied nodes without ZooKeeper: what a ServiceRules reports after each reading
(through the RuleFeed fake), the parse of a node's data (any bytes: a report or None),
and the summary the console shows ("applied by 2 of 3 processes")."""

import json
import os
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from csf.registry.applied import (
    MAX_REASON,
    AppliedReport,
    parse_applied,
    process_name,
    summarize,
)
from csf.rule_set import ServiceRules
from csf.rules import TimeoutRule
from tests.resilience.fakes import RuleFeed
from tests.strategies import DEEP, HUGE, encoded, examples, hostile_numbers, json_values, nested

REPORT = AppliedReport(7, "applied", None, "consumer", "web", "h1", 4242, 1_700_000_000.0)


def reports(feed: RuleFeed, kind: str) -> list[dict[str, Any]]:
    return [json.loads(doc) for (k, _), doc in feed.applied.items() if k == kind]


# -- what ServiceRules reports ----------------------------------------------------------------


async def test_each_reading_reports_the_version_applied_with_who_applied_it() -> None:
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S", role="gateway", app="web")  # type: ignore[arg-type]
    feed.push("timeout", timeout_ms=100)
    feed.push("timeout", timeout_ms=200)
    [(kind, process)] = feed.applied
    assert (kind, process) == ("timeout", rules.applied.process)
    [report] = reports(feed, "timeout")
    assert report["version"] == 1 and report["status"] == "applied"
    assert (report["role"], report["app"], report["pid"]) == ("gateway", "web", os.getpid())
    assert report["reason"] is None and report["schema"] == 1
    await rules.close()
    assert feed.applied == {}, "closing the rules removes their nodes"


async def test_a_refused_version_is_reported_with_its_reason_and_the_old_rule_stays() -> None:
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S")  # type: ignore[arg-type]
    feed.push("timeout", timeout_ms=100)
    feed.push("timeout", timeout_ms="x" * 1000)
    [report] = reports(feed, "timeout")
    assert (report["version"], report["status"]) == (1, "refused")
    assert "timeout_ms" in report["reason"] and len(report["reason"]) <= MAX_REASON
    assert rules.get(TimeoutRule) == TimeoutRule(timeout_ms=100)
    await rules.close()


async def test_a_rule_equal_to_the_one_in_force_is_still_reported_as_applied() -> None:
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S")  # type: ignore[arg-type]
    feed.push("timeout", timeout_ms=100)
    feed.push("timeout", timeout_ms=100)
    [report] = reports(feed, "timeout")
    assert (report["version"], report["status"]) == (1, "applied")
    await rules.close()


class Recording(RuleFeed):
    """Also keeps every document reported, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes | None] = []

    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        self.written.append(document)
        super().report_applied(tenant, service, kind, process, document)


class Broken(RuleFeed):
    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        raise RuntimeError("a registry's bug")


async def test_a_deleted_rule_removes_its_node_and_reading_the_same_again_writes_nothing() -> None:
    feed = Recording()
    rules = ServiceRules(feed, "T", "S")  # type: ignore[arg-type]
    feed.push("retry", retries=1)
    feed.push("timeout", timeout_ms=100)
    feed.written.clear()
    feed.listeners["timeout"](json.dumps({"schema": 1, "timeout_ms": 100}).encode(), 0)
    assert feed.written == [], "a re-reading of what the node says already is not written again"
    feed.delete("timeout")
    assert [kind for kind, _ in feed.applied] == ["retry"]
    await rules.close()


async def test_two_holders_in_one_process_have_a_node_each() -> None:
    feed = RuleFeed()
    first = ServiceRules(feed, "T", "S")  # type: ignore[arg-type]
    second = ServiceRules(feed, "T", "S", role="provider")  # type: ignore[arg-type]
    assert first.applied.process != second.applied.process
    assert second.applied.process.startswith("provider-")
    await first.close()
    await second.close()


async def test_a_registry_failing_to_record_never_stops_the_rule_being_applied() -> None:
    feed = Broken()
    rules = ServiceRules(feed, "T", "S")  # type: ignore[arg-type]
    feed.push("timeout", timeout_ms=100)
    assert rules.get(TimeoutRule) == TimeoutRule(timeout_ms=100)
    await rules.close()


def test_a_process_name_is_a_safe_znode_name() -> None:
    name = process_name("consumer")
    assert re.fullmatch(r"consumer-[A-Za-z0-9._-]+-\d+-[0-9a-f]{8}", name), name
    assert process_name("consumer") != name


# -- the node's data ---------------------------------------------------------------------------


def test_a_report_survives_its_json() -> None:
    assert parse_applied(REPORT.to_json()) == REPORT
    refused = AppliedReport(3, "refused", "why", "provider", None, "h", 1, 5)
    assert parse_applied(refused.to_json()) == refused


def test_data_csf_did_not_write_is_none() -> None:
    good = REPORT.to_document()
    for change in (
        {"schema": 2},
        {"version": -1},
        {"version": True},
        {"version": 2**31},
        {"status": "defaults"},
        {"reason": 5},
        {"pid": -1},
        {"at": float("nan")},
        {"host": None},
    ):
        assert parse_applied(json.dumps({**good, **change}).encode()) is None, change
    assert parse_applied(b"") is None
    assert parse_applied(b"[]") is None


@examples(300)
@given(data=st.binary(max_size=300) | st.builds(encoded, json_values(hostile_numbers)))
@example(data=nested(DEEP))
@example(data=json.dumps({**REPORT.to_document(), "version": HUGE}).encode())
@example(data=json.dumps({**REPORT.to_document(), "reason": "r" * 5000}).encode()[:4096])
def test_any_bytes_give_a_report_or_none(data: bytes) -> None:
    report = parse_applied(data)
    assert report is None or isinstance(report, AppliedReport)


@examples(200)
@given(
    changes=st.dictionaries(
        st.sampled_from(["version", "status", "reason", "role", "app", "host", "pid", "at"]),
        json_values(hostile_numbers, leaves=3),
        max_size=3,
    )
)
def test_a_report_with_any_fields_changed_is_one_with_bounded_fields_or_none(
    changes: dict[str, Any],
) -> None:
    report = parse_applied(encoded({**REPORT.to_document(), **changes}))
    if report is not None:
        assert type(report.version) is int and 0 <= report.version < 2**31
        assert report.status in ("applied", "refused")
        assert report.reason is None or len(report.reason) <= MAX_REASON
        assert type(report.pid) is int and isinstance(report.at, float)


# -- the summary -----------------------------------------------------------------------------


def entry(process: str, version: int, status: str = "applied", reason: str | None = None) -> Any:
    return {"process": process, "version": version, "status": status, "reason": reason}


def test_the_summary_counts_the_current_the_lagging_and_the_refused() -> None:
    applied = [
        entry("a", 4),
        entry("b", 4),
        entry("c", 3),
        entry("d", 4, "refused", "timeout_ms: expected a number"),
    ]
    summary = summarize(applied, 4)
    assert (summary.version, summary.current, summary.total) == (4, 2, 4)
    assert [e["process"] for e in summary.lagging] == ["c"]
    assert [(e["process"], e["reason"]) for e in summary.refused] == [
        ("d", "timeout_ms: expected a number")
    ]


def test_every_process_on_the_current_version_is_all_of_them() -> None:
    summary = summarize([entry(str(n), 9) for n in range(12)], 9)
    assert (summary.current, summary.total, summary.lagging, summary.refused) == (12, 12, (), ())


def test_without_a_rule_every_applied_version_lags_and_nothing_is_current() -> None:
    summary = summarize([entry("a", 0), entry("b", 2)], None)
    assert (summary.current, summary.total, len(summary.lagging)) == (0, 2, 2)
    assert summarize([], 3).total == 0
