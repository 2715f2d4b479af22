"""mypy --strict sees the generated async stub type through consumer.stub()."""

from pathlib import Path

from mypy import api

from tests.conftest import ROOT

CONSUMER_MODULE = """
import csf
from demo import greeter_pb2, greeter_pb2_grpc


async def call(consumer: csf.Consumer) -> str:
    stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=1.0)
    reveal_type(stub)
    reply = await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
    reveal_type(reply)
    async for item in stub.StreamHellos(greeter_pb2.HelloRequest(name="x")):
        reveal_type(item)
    return reply.message
"""


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    module = tmp_path / "typed_consumer.py"
    module.write_text(source)
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tmp_path / "cache"),
            str(module),
        ]
    )  # fmt: skip
    return stdout + stderr, status


def test_mypy_strict_accepts_a_consumer_and_sees_the_reply_type(tmp_path: Path) -> None:
    output, status = _mypy(tmp_path, CONSUMER_MODULE)
    assert 'Revealed type is "demo.greeter_pb2_grpc.GreeterAsyncStub"' in output
    assert output.count('Revealed type is "demo.greeter_pb2.HelloReply"') == 2
    assert "error" not in output, output
    assert status == 0


def test_mypy_strict_rejects_a_misused_reply(tmp_path: Path) -> None:
    misuse = CONSUMER_MODULE.replace("return reply.message", "return reply.no_such_field")
    output, status = _mypy(tmp_path, misuse)
    assert status == 1
    assert '"HelloReply" has no attribute "no_such_field"' in output
