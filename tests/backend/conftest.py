"""Backend tests share the real parts defined in tests/conftest.py."""
