"""How a ServiceRules tells a refused rule document: through its registry's Rejections,
once per version; a document the rules refuse is one WARNING, a CSF bug met while
reading one is one ERROR with its traceback. The last good rule stays either way."""

import json
import logging

import pytest

import csf.rule_set
from csf.registry.paths import rule_path
from csf.rules import TimeoutRule
from tests.resilience.fakes import service_rules


def test_a_refused_document_is_one_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rules, feed = service_rules(timeout={"timeout_ms": 100})
    for _ in range(3):
        feed.push("timeout", timeout_ms=1e13)
    [told] = [r for r in caplog.records if "rejected timeout rule" in r.getMessage()]
    assert told.levelno == logging.WARNING and told.exc_info is None
    assert rules.rejected == 1
    rule = rules.get(TimeoutRule)
    assert rule is not None and rule.timeout_ms == 100


def test_a_bug_met_reading_a_document_is_one_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING)
    rules, feed = service_rules(timeout={"timeout_ms": 100})

    def buggy(kind: str, data: bytes) -> None:
        raise ZeroDivisionError("a CSF bug")

    monkeypatch.setattr(csf.rule_set, "parse_rule", buggy)
    for _ in range(3):
        feed.push("timeout", timeout_ms=200)
    [told] = [r for r in caplog.records if "rejected timeout rule" in r.getMessage()]
    assert told.levelno == logging.ERROR
    assert told.exc_info is not None and isinstance(told.exc_info[1], ZeroDivisionError)
    assert rules.rejected == 1
    rule = rules.get(TimeoutRule)
    assert rule is not None and rule.timeout_ms == 100


def test_the_rules_tell_through_their_registry_s_rejections() -> None:
    rules, feed = service_rules()
    feed.push("timeout", timeout_ms=1e13)
    told = json.dumps({"schema": 1, "timeout_ms": 1e13}).encode()
    path = rule_path("T", "S", "timeout")
    assert not feed.rejections.refuse("rule", "format", path, told, "the registry knew it")
    assert rules.rejected == 1
