"""Signing in to the dashboards: passwords (Argon2id) or an API key, sessions, CSRF.

The session cookie holds a random token (the database keeps its SHA-256), ``HttpOnly`` and
``SameSite=Lax``, ``Secure`` over HTTPS. Every form carries the session's CSRF token; the
sign-in form a token of its own (double submit: cookie and field must match). A session
is checked on every request: the API key it came from still live, the user not disabled,
the organisation still holding its role on chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from sqlmodel import Session, select

from konbit.access.keys import Actor, authenticate
from konbit.access.models import ApiKey
from konbit.db.models import utcnow
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services.actors import holds_role
from konbit.services.errors import Conflict, InvalidInput
from konbit.web.models import WebSession, WebUser

COOKIE = "kb_session"
LOGIN_CSRF_COOKIE = "kb_login_csrf"
SESSION_HOURS = 12
PASSWORD_MIN = 10
hasher = PasswordHasher()  # Argon2id, memory-hard (argon2-cffi's defaults: 64 MiB, t=3)
#: Compared against when the user is unknown, so both answers take as long.
_DUMMY_HASH = hasher.hash("konbit-no-such-user")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def create_user(
    runtime: Runtime, actor: Actor, organisation: str, role: Role, username: str, password: str
) -> WebUser:
    """The operator adds a person who signs in for ``organisation`` in ``role``."""
    from konbit.services.common import require_role

    require_role(actor, Role.OPERATOR)
    username = username.strip()
    if not 3 <= len(username) <= 80 or not username.isprintable():
        raise InvalidInput("a username has 3 to 80 printable characters", field="username")
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"a password has at least {PASSWORD_MIN} characters", field="password")
    with Session(runtime.engine, expire_on_commit=False) as session:
        if session.exec(select(WebUser).where(WebUser.username == username)).first():
            raise Conflict(f"the username {username} is taken", field="username")
        user = WebUser(
            username=username,
            organisation=organisation,
            role=role.value,
            password_hash=hasher.hash(password),
        )
        session.add(user)
        session.commit()
    return user


def check_password(runtime: Runtime, username: str, password: str) -> WebUser | None:
    with Session(runtime.engine, expire_on_commit=False) as session:
        user = session.exec(select(WebUser).where(WebUser.username == username.strip())).first()
        if user is None or user.disabled_at is not None:
            with contextlib.suppress(VerificationError, InvalidHashError):
                hasher.verify(_DUMMY_HASH, password)
            return None
        try:
            hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
            session.add(user)
            session.commit()
        return user


def start_session(
    runtime: Runtime, organisation: str, role: str, *, user_id: int | None, api_key_id: int | None
) -> str:
    """A new session; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    with Session(runtime.engine) as session:
        session.add(
            WebSession(
                token_hash=_digest(token),
                organisation=organisation,
                role=role,
                user_id=user_id,
                api_key_id=api_key_id,
                csrf_token=secrets.token_urlsafe(24),
                expires_at=utcnow() + timedelta(hours=SESSION_HOURS),
            )
        )
        session.commit()
    return token


def sign_in(runtime: Runtime, username: str, password: str, api_key: str) -> str | None:
    """A session token for a good password or a live API key; None otherwise."""
    if api_key.strip():
        actor = authenticate(runtime.engine, api_key.strip())
        if actor is None or not holds_role(runtime, actor):
            return None
        return start_session(
            runtime, actor.organisation, actor.role.value, user_id=None, api_key_id=actor.key_id
        )
    user = check_password(runtime, username, password)
    if user is None:
        return None
    return start_session(runtime, user.organisation, user.role, user_id=user.id, api_key_id=None)


def end_session(runtime: Runtime, token: str | None) -> None:
    if not token:
        return
    with Session(runtime.engine) as session:
        row = session.get(WebSession, _digest(token))
        if row is not None:
            session.delete(row)
            session.commit()


def current(runtime: Runtime, request: Request) -> tuple[Actor, WebSession] | None:
    """The signed-in actor and session, or None (no cookie, expired, or access withdrawn)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    with Session(runtime.engine, expire_on_commit=False) as session:
        row = session.get(WebSession, _digest(token))
        if row is None:
            return None
        if _aware(row.expires_at) < utcnow():
            session.delete(row)
            session.commit()
            return None
        if row.api_key_id is not None:
            key = session.get(ApiKey, row.api_key_id)
            if key is None or key.revoked_at is not None:
                return None
        if row.user_id is not None:
            user = session.get(WebUser, row.user_id)
            if user is None or user.disabled_at is not None:
                return None
    actor = Actor(organisation=row.organisation, role=Role(row.role), key_id=row.api_key_id)
    if not holds_role(runtime, actor):
        return None
    return actor, row


def csrf_ok(expected: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(expected.encode(), (sent or "").encode())
