"""UI sessions: a sign-in kept in the browser session's state, valid for ``auth.session_ttl_s``.

The session holds only the user's name and its expiry; the account is read from the store on every rerun,
so a removed account or a changed role takes effect at the user's next click. Sign-ins, refusals,
sign-outs and expiries go to the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from docqa.auth.errors import AccountLockedError, SignInError
from docqa.auth.users import User
from docqa.state.protocol import StateStore
from rag.settings import Settings

KEY = "docqa_sign_in"  # the session-state entry: {"name": str, "expires_at": float}


def sign_in(state: StateStore, settings: Settings, session: MutableMapping[str, Any], name: str, password: str) -> User:
    """Check the password and start a session; SignInError (AccountLockedError: locked, for how long)."""
    name = name.strip()
    try:
        user = state.users.authenticate(name, password)
    except AccountLockedError as exc:
        state.audit.record(name or "?", "sign_in_locked", outcome="refused", detail={"locked_s": round(exc.seconds)})
        raise
    except SignInError:
        state.audit.record(name or "?", "sign_in_failed", outcome="refused")
        raise
    session[KEY] = {"name": user.name, "expires_at": time.time() + settings.auth.session_ttl_s}
    state.audit.record(user.name, "sign_in", detail={"role": user.role, "method": "local"})
    return user


def current_user(state: StateStore, session: MutableMapping[str, Any]) -> User | None:
    """The signed-in user, or None: never signed in, signed out, expired, or the account removed."""
    held = session.get(KEY)
    if not held:
        return None
    if time.time() >= held["expires_at"]:
        session.pop(KEY, None)
        state.audit.record(held["name"], "session_expired")
        return None
    user = state.users.get(held["name"])
    if user is None:
        session.pop(KEY, None)
    return user


def expires_in(session: MutableMapping[str, Any]) -> float:
    held = session.get(KEY)
    return max(0.0, held["expires_at"] - time.time()) if held else 0.0


def sign_out(state: StateStore, session: MutableMapping[str, Any]) -> None:
    held = session.pop(KEY, None)
    if held:
        state.audit.record(held["name"], "sign_out")
