"""UI sessions: a sign-in kept in the browser session's state, valid for ``auth.session_ttl_s``.

The session holds only the user's name and its expiry; the account is read from the store on every rerun,
so a removed account or a changed role takes effect at the user's next click. Sign-ins, refusals,
sign-outs and expiries go to the audit trail.

Failed sign-ins are limited twice: per account (``users``: a lock after ``auth.max_failures`` in a row) and
per client address, whatever the names tried (a token bucket of ``auth.address_max_failures`` in the state
store, spent by failures only, so a team behind one NAT address signing in each morning never meets it).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from docqa.auth.errors import AccountLockedError, AddressLockedError, SignInError
from docqa.auth.users import User
from docqa.state.protocol import RateLimiter, StateStore
from rag.settings import AuthSettings, Settings

KEY = "docqa_sign_in"  # the session-state entry: {"name": str, "expires_at": float}


LOOPBACK = "127.0.0.1"  # the address of a browser on this machine (Streamlit reports none for it)


def address_limiter(state: StateStore, auth: AuthSettings) -> RateLimiter:
    """Failed sign-ins per client address: ``address_max_failures`` at once, refilled over ``lockout_s``."""
    per_minute = auth.address_max_failures * 60.0 / auth.lockout_s
    return state.rate_limiter("sign_in_address", per_minute, max(1, auth.address_max_failures))


def sign_in(
    state: StateStore,
    settings: Settings,
    session: MutableMapping[str, Any],
    name: str,
    password: str,
    address: str | None = None,
) -> User:
    """Check the address's limit and the password, and start a session; SignInError (AccountLockedError,
    AddressLockedError: locked, for how long). ``address`` is the client's (None: this machine)."""
    name = name.strip()
    address = address or LOOPBACK
    limiter = address_limiter(state, settings.auth)
    waiting = limiter.wait(address)
    if waiting > 0:  # refused before the password is even looked at: a locked address learns nothing
        detail = {"address": address, "retry_s": round(waiting)}
        state.audit.record(name or "?", "sign_in_throttled", outcome="refused", detail=detail)
        raise AddressLockedError(address, waiting)
    try:
        user = state.users.authenticate(name, password)
    except SignInError as exc:
        limiter.take(address)
        locked = isinstance(exc, AccountLockedError)
        detail = {"address": address, **({"locked_s": round(exc.seconds)} if locked else {})}
        action = "sign_in_locked" if locked else "sign_in_failed"
        state.audit.record(name or "?", action, outcome="refused", detail=detail)
        waiting = limiter.wait(address)
        if waiting > 0 and not locked:  # this failure used the address's last try: say so now
            raise AddressLockedError(address, waiting) from exc
        raise
    session[KEY] = {"name": user.name, "expires_at": time.time() + settings.auth.session_ttl_s}
    state.audit.record(user.name, "sign_in", detail={"role": user.role, "method": "local", "address": address})
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
