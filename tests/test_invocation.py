from typing import Any

import grpc

from csf import Invocation, Invoker, compose


def _invocation() -> Invocation:
    return Invocation("XIESR", "/demo.Greeter/SayHello", "request", None, deadline=0.0)


async def test_compose_runs_filters_outermost_first_around_the_terminal() -> None:
    seen: list[str] = []

    def tracer(name: str) -> Any:
        async def filter_(inv: Invocation, next: Invoker) -> Any:
            seen.append(f"{name} in")
            result = await next(inv)
            seen.append(f"{name} out")
            return f"{name}({result})"

        return filter_

    async def terminal(inv: Invocation) -> Any:
        seen.append("terminal")
        return inv.request

    invoker = compose([tracer("a"), tracer("b")], terminal)
    assert await invoker(_invocation()) == "a(b(request))"
    assert seen == ["a in", "b in", "terminal", "b out", "a out"]


async def test_a_filter_can_answer_without_calling_next() -> None:
    async def answer(inv: Invocation, next: Invoker) -> Any:
        return "from filter"

    async def terminal(inv: Invocation) -> Any:
        raise AssertionError("the terminal must not run")

    assert await compose([answer], terminal)(_invocation()) == "from filter"


async def test_compose_of_no_filters_is_the_terminal() -> None:
    async def terminal(inv: Invocation) -> Any:
        return 1

    assert compose([], terminal) is terminal


def test_a_unary_call_s_end_hook_runs_at_once_with_ok() -> None:
    heard: list[grpc.StatusCode] = []
    _invocation().on_end(heard.append)
    assert heard == [grpc.StatusCode.OK]


def test_a_stream_s_end_hooks_run_once_in_order_and_late_ones_at_once() -> None:
    inv = Invocation("S", "/p.S/M", None, None, 0.0, streaming=True)
    heard: list[str] = []
    inv.on_end(lambda code: heard.append(f"inner {code.name}"))
    inv.on_end(lambda code: heard.append(f"outer {code.name}"))
    assert heard == [], "the stream has not ended"
    inv.ended(grpc.StatusCode.INTERNAL)
    inv.ended(grpc.StatusCode.OK)  # a second report changes nothing
    inv.on_end(lambda code: heard.append(f"late {code.name}"))
    assert heard == ["inner INTERNAL", "outer INTERNAL", "late INTERNAL"]
    assert inv.streaming


def test_a_failing_end_hook_does_not_keep_the_others_from_running() -> None:
    inv = Invocation("S", "/p.S/M", None, None, 0.0, streaming=True)
    heard: list[grpc.StatusCode] = []

    def broken(code: grpc.StatusCode) -> None:
        raise RuntimeError("a filter's bug")

    inv.on_end(broken)
    inv.on_end(heard.append)
    inv.ended(grpc.StatusCode.OK)
    assert heard == [grpc.StatusCode.OK]
