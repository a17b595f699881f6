"""Observability: Prometheus metrics, JSON logs and the request id that links them."""
