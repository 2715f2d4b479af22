"""Provider classes the security tests share: they count the calls their handlers saw."""

from typing import Any

import csf
from demo import greeter_pb2
from demo.providers import Greeter


@csf.provider(service="XIESR", version="1.0.0", warmup=0)
class CountingGreeter(Greeter):
    """Counts the calls that reached its handler."""

    handled = 0

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).handled += 1
        return await super().SayHello(request, context)


@csf.provider(service="XIESR", version="1.0.0", warmup=0)
class SizingGreeter(Greeter):
    """Answers with the size of the name only, so replies stay small whatever the request."""

    handled = 0

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).handled += 1
        return greeter_pb2.HelloReply(message=str(len(request.name)))
