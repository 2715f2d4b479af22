import dataclasses
import importlib
import importlib.util
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import csf
from csf._chain import BUILTIN_CONSUMER_FILTERS, DEFAULT_CONSUMER_CHAIN
from csf.observability import OFF
from csf.observability.tracing import AttemptTracingFilter, ClientTracingFilter
from tests.resilience.test_filters import context


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"exporter": "jaeger"}, "exporter"),
        ({"sampler_ratio": 1.5}, "sampler_ratio"),
        ({"prometheus_port": 0}, "prometheus_port"),
        ({"prometheus_port": 65_536}, "prometheus_port: expected a whole number from 1 to 65,535"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, object], field: str) -> None:
    with pytest.raises(csf.ConfigError, match=field):
        csf.Observability(**settings)  # type: ignore[arg-type]


def test_with_tracing_off_its_filters_are_not_in_the_chain() -> None:
    names = ("tracing", "attempt_tracing", "metrics")
    assert {name: BUILTIN_CONSUMER_FILTERS[name](context()) for name in names} == dict.fromkeys(
        names
    )
    telemetry = csf.Observability(tracer_provider=TracerProvider(), metrics=False).resolve("t")
    traced = dataclasses.replace(context(), telemetry=telemetry, directory=_Directory())
    assert isinstance(BUILTIN_CONSUMER_FILTERS["tracing"](traced), ClientTracingFilter)
    assert isinstance(BUILTIN_CONSUMER_FILTERS["attempt_tracing"](traced), AttemptTracingFilter)
    assert BUILTIN_CONSUMER_FILTERS["metrics"](traced) is None
    assert DEFAULT_CONSUMER_CHAIN[:2] == ("tracing", "metrics")


class _Directory:
    class key:
        tenant = "T"


def test_nothing_is_traced_or_installed_globally_by_default() -> None:
    telemetry = csf.Observability().resolve("t")
    assert telemetry == OFF
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_an_exporter_gets_a_private_provider() -> None:
    telemetry = csf.Observability(exporter="console", sampler_ratio=0.5).resolve("t")
    assert telemetry.tracer is not None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "not global"


OTLP_MODULE = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def _otlp_installed() -> bool:
    try:
        return importlib.util.find_spec(OTLP_MODULE) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


OTLP_INSTALLED = _otlp_installed()


@pytest.mark.skipif(OTLP_INSTALLED, reason="opentelemetry-exporter-otlp is installed")
def test_the_otlp_exporter_without_its_package_is_a_config_error_naming_the_package() -> None:
    with pytest.raises(csf.ConfigError, match="needs the package opentelemetry-exporter-otlp"):
        csf.Observability(exporter="otlp").resolve("t")


@pytest.mark.skipif(not OTLP_INSTALLED, reason="opentelemetry-exporter-otlp is not installed")
def test_the_otlp_exporter_gets_a_private_provider_exporting_over_otlp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    otlp = importlib.import_module(OTLP_MODULE)
    made: list[object] = []

    class RecordedExporter(otlp.OTLPSpanExporter):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(otlp, "OTLPSpanExporter", RecordedExporter)
    telemetry = csf.Observability(exporter="otlp").resolve("t")
    assert telemetry.tracer is not None
    assert len(made) == 1, "one OTLP span exporter behind the private provider"
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "not global"
