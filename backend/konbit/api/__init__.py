"""The HTTP API (FastAPI): one router per actor."""
