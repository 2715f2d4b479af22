"""The `load_balance` filter: choose the endpoint for this attempt and count it busy."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc

from csf._invocation import Invocation, Invoker

if TYPE_CHECKING:
    from csf.directory import Directory, PickerRef


class LoadBalanceFilter:
    __slots__ = ("_directory", "_ref")

    def __init__(self, directory: Directory, ref: PickerRef) -> None:
        self._directory = directory
        self._ref = ref

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        ref = inv.pool or self._ref
        picker = ref.picker
        endpoint = picker.pick(inv) if picker is not None else None
        if endpoint is None:
            endpoint = await self._directory.pick(ref, inv)
        inv.endpoint = endpoint
        inv.tried.add(endpoint.address)
        started = endpoint.begin()
        code = grpc.StatusCode.OK
        try:
            return await next(inv)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            endpoint.end(started, code)
