from typing import Any

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
