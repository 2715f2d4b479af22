import inspect

import grpc

import csf


def test_all_is_sorted_and_matches_the_public_names() -> None:
    assert csf.__all__ == sorted(csf.__all__)
    public = {
        name
        for name, value in vars(csf).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(csf.__all__)


def test_invocation_errors_are_grpc_errors_with_their_status() -> None:
    expected = {
        csf.NoProviderError: grpc.StatusCode.UNAVAILABLE,
        csf.CircuitOpenError: grpc.StatusCode.UNAVAILABLE,
        csf.RateLimitedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
        csf.ConcurrencyLimitError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    for error_class, code in expected.items():
        error = error_class("why")
        assert isinstance(error, grpc.RpcError)
        assert isinstance(error, grpc.aio.AioRpcError)
        assert isinstance(error, csf.CsfError)
        assert error.code() is code
        assert error.details() == "why"


def test_config_and_registry_errors_are_not_rpc_errors() -> None:
    for error_class in (csf.ConfigError, csf.RegistryError):
        assert issubclass(error_class, csf.CsfError)
        assert not issubclass(error_class, grpc.RpcError)
