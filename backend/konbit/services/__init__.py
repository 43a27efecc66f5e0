"""The actions of each domain, shared by every channel (HTTP API, SMS/USSD, pages, CLI).

A service takes typed input and the acting party, checks role and ownership, simulates the
whole write against the pending state, claims the idempotency key and records the write in
the outbox, all before answering. It raises :mod:`konbit.services.errors` (never an HTTP
error); each channel maps those to its own answer.
"""
