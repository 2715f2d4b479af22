"""A Prometheus endpoint that cannot be served is a configuration error naming the port."""

import socket

import pytest

import csf


def test_a_port_in_use_is_a_config_error_naming_prometheus_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        observability = csf.Observability(prometheus_port=port, tracing=False)
        with pytest.raises(csf.ConfigError, match=rf"prometheus_port: .*127\.0\.0\.1:{port}\b"):
            observability.resolve("web")
