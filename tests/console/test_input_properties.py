"""Property tests of what the console takes from outside (form fields, cookies, query
parameters, node data): any input gives a bounded value or the console's own refusal."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from csf.config import parse_registry_url
from csf.console.reads import page_number
from csf.console.rule_forms import FIELDS, from_form, shown
from csf.console.sessions import LoginRefused, Logins, _credentials
from csf.console.web import TEMPLATES
from csf.rules import RuleError, parse_rule
from tests.strategies import examples, hostile_numbers, json_values

kinds = st.sampled_from(sorted(FIELDS))
texts = st.text(max_size=300)


@given(
    kinds,
    st.dictionaries(st.sampled_from(sorted({f for fs in FIELDS.values() for f in fs})), texts),
    json_values(hostile_numbers),
)
@examples(300)
def test_a_form_gives_a_document_keeping_what_it_does_not_show(
    kind: str, values: dict[str, str], current: Any
) -> None:
    document = from_form(kind, values, current)
    assert isinstance(document, dict) and "schema" in document
    if isinstance(current, dict):
        for key, value in current.items():
            if key not in FIELDS[kind]:
                # Methods and unknown keys are carried over (compared as JSON: NaN != NaN).
                assert json.dumps(document[key]) == json.dumps(value)
    # Refused by the consumers' parser, with its own error: shown, not written.
    with contextlib.suppress(RuleError, ValueError):
        parse_rule(kind, json.dumps(document).encode())


@given(json_values(hostile_numbers), texts)
@examples(200)
def test_a_field_shows_any_stored_value_as_text(document: Any, name: str) -> None:
    assert isinstance(shown(document, name), str)


@given(texts, texts, texts)
@examples(300)
def test_login_fields_give_credentials_or_a_refusal(tenant: str, user: str, password: str) -> None:
    try:
        checked, digest = _credentials(tenant, user, password)
    except LoginRefused as exc:
        assert str(exc)
        return
    assert checked == tenant
    assert digest is None or (":" not in digest[0] and all(digest))


@given(st.none() | st.text(max_size=400))
@examples(300)
def test_any_cookie_finds_no_login_unless_it_is_one(cookie: str | None) -> None:
    url = parse_registry_url("zk://127.0.0.1:1")
    logins = Logins(url, open_tenants=False, idle_s=60, max_logins=1)  # type: ignore[arg-type]
    assert logins.find(cookie) is None


@given(st.text(max_size=20))
@examples(300)
def test_a_page_parameter_is_a_bounded_page_number(text: str) -> None:
    number = page_number(text)
    assert 0 <= number < 10**6


@given(json_values(hostile_numbers) | st.booleans())
@examples(200)
def test_a_stored_time_renders_as_a_time_or_a_dash(at: Any) -> None:
    shown_at = TEMPLATES.filters["when"](at)
    assert shown_at == "-" or shown_at.endswith("UTC")
