"""The HTTP API (FastAPI): one router per feature beside the service it calls."""
