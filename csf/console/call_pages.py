"""Try a call: GET /services/<code>/call (`method=<pkg.Service>/<Method>` preselects one)
shows the service's methods and a JSON request; POST /services/<code>/call sends it.

The call goes the gateway's way with the gateway's own code: the stored descriptor is
compiled as the gateway compiles it, the JSON becomes the request as an HTTP body would
(an invalid one is refused, field named, before anything is sent), the login's consumer
(app `csf-console`) calls through its whole filter chain, and the reply is shown as the
gateway's JSON, a failure as the gateway's status and message. Only the unary methods
of open gRPC services can be tried; the rest are listed, not offered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from csf._exceptions import RegistryError
from csf.console import reads
from csf.console.caller import APP, Caller, LoggedOut
from csf.console.web import Refusal, checked_form, field, in_thread, login_of, render
from csf.gateway import transcode
from csf.gateway.catalogue import Method
from csf.gateway.errors import HttpError, from_rpc, refused_by_csf
from csf.registry.admin import RegistryAdmin

MAX_REQUEST_CHARS = 512 * 1024  # below the form parser's 1 MiB a field: our reason shows
MAX_TIMEOUT_S = 30.0
DEFAULT_TIMEOUT = "5"
MAX_METHOD_CHARS = 512


@dataclass(frozen=True)
class Choice:
    """One method of the service, as the form lists it."""

    method: Method
    status: str  # the lifecycle status of its gRPC service

    @property
    def name(self) -> str:
        return f"{self.method.grpc_service}/{self.method.name}"

    @property
    def refusal(self) -> str | None:
        """Why it cannot be tried here; None when it can."""
        if self.status != "open":
            return f"{self.method.grpc_service} is {self.status}, not open"
        if self.method.kind != "unary_unary":
            return f"a {self.method.kind} method: only unary methods can be tried here"
        return None


@dataclass(frozen=True)
class Outcome:
    """What the call answered: the gateway's status, code and JSON (or message)."""

    status: int
    code: str
    text: str
    elapsed_ms: float


def _choices(admin: RegistryAdmin, code: str) -> list[Choice]:
    """The methods of every gRPC service of `code` whose stored descriptor compiles
    (the service page says why another does not). Blocking: runs in a worker thread."""
    admin.existing(code)
    return [
        Choice(method, built.status)
        for _, _, built in reads.compiled(admin, code)
        if not isinstance(built, str)
        for method in built.methods
    ]


def _timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise Refusal(f"timeout: {text[:32]!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_TIMEOUT_S:  # NaN fails too
        raise Refusal(f"timeout: {text[:32]} is not more than 0 and at most {MAX_TIMEOUT_S:g} s")
    return seconds


def _request(method: Method, text: str) -> Message:
    """The request message, as the gateway reads an HTTP body into it."""
    try:
        return transcode.from_body(method.input, text.encode())
    except HttpError as error:
        raise Refusal(f"json: {error.message.removeprefix('body: ')}") from None


def _chosen(choices: list[Choice], name: str, code: str) -> Choice:
    for choice in choices:
        if choice.name == name:
            if choice.refusal is not None:
                raise Refusal(f"method: {name}: {choice.refusal}")
            return choice
    raise Refusal(f"method: {name[:MAX_METHOD_CHARS]!r} is not a method of {code}")


async def _call(caller: Caller, method: Method, request: Message, seconds: float) -> Outcome:
    started = time.perf_counter()
    try:
        reply = await caller.unary(method, request, seconds)
    except grpc.aio.AioRpcError as failed:
        error = from_rpc(failed.code(), failed.details(), by_csf=refused_by_csf(failed))
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(error.status, error.code, error.message, elapsed)
    except (RegistryError, LoggedOut) as failed:  # no session to call through
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(503, "UNAVAILABLE", str(failed), elapsed)
    elapsed = (time.perf_counter() - started) * 1000
    text = json.dumps(transcode.to_json(reply), indent=2, ensure_ascii=False)
    return Outcome(200, "OK", text, elapsed)


def _page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    return render(request, "call.html", {"app": APP, **context}, status)


async def call_form(request: Request) -> Response:
    login = login_of(request)
    code = request.path_params["code"]
    choices = await in_thread(login, _choices, login.admin, code)
    selected = request.query_params.get("method", "")
    return _page(
        request,
        {
            "code": code,
            "choices": choices,
            "selected": selected,
            "json_text": "{}",
            "timeout": DEFAULT_TIMEOUT,
        },
    )


async def call(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    code = request.path_params["code"]
    name = field(form, "method", MAX_METHOD_CHARS)
    text = field(form, "json", MAX_REQUEST_CHARS)
    timeout = field(form, "timeout", 32)
    choices = await in_thread(login, _choices, login.admin, code)
    shown = {
        "code": code,
        "choices": choices,
        "selected": name,
        "json_text": text,
        "timeout": timeout,
    }
    try:
        chosen = _chosen(choices, name, code)
        seconds = _timeout(timeout)
        message = _request(chosen.method, text)
    except Refusal as refused:
        # The form again, as the operator filled it, with the reason: nothing was sent.
        return _page(request, {**shown, "error": str(refused)}, refused.status)
    if request.app.state.logins.find_id(login.id) is None:
        raise Refusal("logged out meanwhile: log in again", 403)
    if login.caller is None:
        login.caller = Caller(login.registry, login.tenant)
    outcome = await _call(login.caller, chosen.method, message, seconds)
    return _page(request, {**shown, "outcome": outcome})
