"""A service's rules: GET/POST /services/<code>/rules/<kind> (the form, or raw JSON in
field `json`), POST .../confirm after the diff, GET .../history, POST .../rollback
(`version`) and POST .../delete.

Saving is two steps: the POST validates the new document exactly as `csf-registry rule
set` does (the consumers' parser, and no method nothing declares) and shows the diff
against the version read; the confirm writes it only over that version, so an edit made
meanwhile by someone else is refused instead of lost.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from csf._json import load_json
from csf.console import reads, rule_forms
from csf.console.sessions import Login
from csf.console.web import Refusal, checked_form, done, field, in_thread, login_of, render
from csf.rules import PARSERS

MAX_RULE_CHARS = 1024 * 1024


def _kind(request: Request) -> str:
    kind = str(request.path_params["kind"])
    if kind not in PARSERS:
        raise Refusal(f"{kind[:64]!r} is not a rule kind: {', '.join(sorted(PARSERS))}")
    return kind


def _diff(before: str, after: str, version: int) -> list[str]:
    return list(
        difflib.unified_diff(
            before.splitlines(True),
            after.splitlines(True),
            f"version {version}" if version >= 0 else "(no rule)",
            "new version",
        )
    )


def _url(code: str, kind: str, tail: str = "") -> str:
    return f"/services/{quote(code, safe='')}/rules/{kind}{tail}"


async def _page(
    request: Request, login: Login, code: str, kind: str, status: int = 200, **extra: Any
) -> Response:
    view = await in_thread(login, reads.rule_view, login.admin, code, kind)
    context = {
        **view,
        "fields": rule_forms.FIELDS.get(kind, ()),
        "shown": rule_forms.shown,
        "json_text": view["pretty"] or "",
    }
    return render(request, "rule.html", {**context, **extra}, status)


async def rule(request: Request) -> Response:
    login = login_of(request)
    return await _page(request, login, request.path_params["code"], _kind(request))


async def preview(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    code, kind = request.path_params["code"], _kind(request)
    state = await in_thread(login, reads.rule_state, login.admin, code, kind)
    current, text, version = state.document, state.text, state.version
    raw = field(form, "json", MAX_RULE_CHARS)
    try:
        if raw:
            new = load_json(raw.encode("utf-8", "surrogatepass"), MAX_RULE_CHARS * 4)
        elif kind in rule_forms.FIELDS:
            values = {name: field(form, name) for name in rule_forms.FIELDS[kind]}
            new = rule_forms.from_form(kind, values, current)
        else:
            raise Refusal(f"{kind}: give the rule as JSON")
        data = json.dumps(new).encode()
        # The consumers' parser, and no method nothing declares: what `rule set` checks.
        await in_thread(login, login.admin.check_rule, code, kind, data)
    except (ValueError, Refusal) as exc:  # the page again, nothing written
        extra = {"json_text": raw} if raw else {}
        status = exc.status if isinstance(exc, Refusal) else 400
        return await _page(request, login, code, kind, status, error=str(exc), **extra)
    before = reads.pretty(current) if current is not None else (text or "")
    # Up to a megabyte each side: diffed off the loop.
    diff = await asyncio.to_thread(_diff, before, reads.pretty(new), version)
    token = login.keep((code, kind, data, version))
    return render(
        request,
        "rule_diff.html",
        {"code": code, "kind": kind, "diff": diff, "token": token, "version": version},
    )


async def confirm(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    code, kind = request.path_params["code"], _kind(request)
    pending = login.pending.pop(field(form, "token", 64), None)
    if not isinstance(pending, tuple) or pending[:2] != (code, kind):
        raise Refusal("rule: nothing to confirm (already written, or the diff is gone)")
    _, _, data, version = pending
    try:
        await in_thread(login, lambda: login.admin.set_rule(code, kind, data, over=version))
    except Refusal as exc:
        raise Refusal(f"{exc}; nothing was written: look at it again and retry") from None
    return done(_url(code, kind))


async def history(request: Request) -> Response:
    login = login_of(request)
    code, kind = request.path_params["code"], _kind(request)
    entries = await in_thread(login, login.admin.rule_history, code, kind)
    return render(request, "rule_history.html", {"code": code, "kind": kind, "entries": entries})


async def rollback(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    code, kind = request.path_params["code"], _kind(request)
    text = field(form, "version", 12)
    if not (text.isascii() and text.isdigit()):
        raise Refusal(f"version: {text!r} is not a version number")
    await in_thread(login, login.admin.rollback_rule, code, kind, int(text))
    return done(_url(code, kind))


async def delete(request: Request) -> Response:
    login = login_of(request)
    await checked_form(request, login)
    code, kind = request.path_params["code"], _kind(request)
    await in_thread(login, login.admin.remove_rule, code, kind)
    return done(f"/services/{quote(code, safe='')}")
