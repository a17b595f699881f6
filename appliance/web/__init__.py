"""The web page: static files at /ui, and the two endpoints only it needs (/v1/me, /v1/feedback)."""

from appliance.web.web_router import install_web

__all__ = ["install_web"]
