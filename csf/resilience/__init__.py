"""Resilience: breaker, retry and failover, limits, fallbacks, outlier ejection, deadlines."""
