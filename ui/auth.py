"""Sign-in for the staff UI: the sign-in page shown before anything else, and the account box in the sidebar.

``auth.method`` decides: 'none' (loopback only: nobody signs in, everyone is admin), 'local' (accounts
made with `docqa users add`; the sign-in lives in this browser session's state for ``auth.session_ttl_s``,
``docqa.auth.sessions``, and reloading the page asks again) or 'oidc' (single sign-on through Streamlit's
``st.login``; Streamlit keeps the ID token's claims in a signed cookie, and ``docqa.auth.oidc`` maps them to a
role and collections on every run, so a changed mapping applies at once; ``auth.session_ttl_s`` after the
token was issued, the UI signs the user out).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

import streamlit as st

from docqa.auth.access import NOBODY
from docqa.auth.errors import AccountLockedError, SignInError
from docqa.auth.network import is_loopback
from docqa.auth.oidc import claim, sign_in_id, user_from_claims
from docqa.auth.sessions import LOOPBACK, current_user, expires_in, sign_in, sign_out
from docqa.auth.users import User
from docqa.state import StateStore
from rag.settings import Settings

OIDC_KEY = "docqa_oidc"  # session-state entry of a single sign-on: {"name": str, "expires_at": float}
# Streamlit's own OAuth routes (the callback that exchanges the code and checks the ID token) run outside any
# script: they only log why a sign-in failed. These are the records of a refused callback.
STREAMLIT_AUTH_LOGGER = "streamlit.web.server.starlette.starlette_auth_routes"
_CALLBACK_FAILURES = ("token exchange failed", "Error during authentication", "Missing provider for OAuth callback")
_SEEN_MAX = 10_000

NETWORK_WITHOUT_SIGN_IN = (
    "This UI listens on **{address}** with no sign-in (auth.method = 'none'), so it does not open. Run it on this "
    "machine only (`docqa ui`), or create accounts (`docqa users add NAME --role admin`) and start it with "
    "`DOCQA_AUTH_METHOD=local`."
)


def refuse_network_without_sign_in(settings: Settings) -> None:
    """Stop the page when nobody signs in yet the server listens beyond this machine (`streamlit run` started
    by hand, around `docqa ui`'s own check). An unset address means every interface."""
    address = str(st.get_option("server.address") or "")
    if settings.auth.method == "none" and not is_loopback(address):
        st.error(NETWORK_WITHOUT_SIGN_IN.format(address=address or "every interface"), icon=":material/lock:")
        st.stop()


def client_address() -> str:
    """The browser's address as Streamlit's server saw it (a browser on this machine: 127.0.0.1; AppTest has
    no connection and hands back a mock)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else LOOPBACK


def signed_in_user(settings: Settings, state: StateStore) -> User:
    """The user for this run: the signed-in account, or the sign-in page and a stop."""
    if settings.auth.method == "none":
        return NOBODY
    if settings.auth.method == "oidc":
        return _oidc_user(settings, state)
    user = current_user(state, st.session_state)
    if user is not None:
        return user
    _sign_in_form(settings, state)
    st.stop()
    raise RuntimeError("st.stop() did not stop the script: no page is drawn without a sign-in")


def _sign_in_form(settings: Settings, state: StateStore) -> None:
    st.title("Sign in to docqa")
    slot = st.container()  # always drawn, so the form keeps its place whether or not a message shows
    message = st.session_state.pop("sign_in_message", None)
    if message:
        slot.error(message, icon=":material/lock:")
    with st.form("sign_in", enter_to_submit=True, clear_on_submit=True):
        name = st.text_input("Name", key="sign_in_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="sign_in_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            sign_in(state, settings, st.session_state, name, password, client_address())
        except AccountLockedError as exc:
            st.session_state["sign_in_message"] = str(exc)
        except SignInError as exc:
            st.session_state["sign_in_message"] = f"Not signed in: {exc}."
        st.rerun()


def _sign_out(state: StateStore) -> None:
    sign_out(state, st.session_state)
    _forget_session()


def _forget_session() -> None:
    for key in list(st.session_state):  # nothing of this person's session stays for the next one
        del st.session_state[key]


def account_box(user: User, state: StateStore) -> None:
    """Who is signed in, until when, and the sign-out button (drawn in the sidebar)."""
    if user is NOBODY:
        st.caption("No sign-in (this machine only).")
        return
    oidc = st.session_state.get(OIDC_KEY)
    left = max(0.0, oidc["expires_at"] - time.time()) if oidc else expires_in(st.session_state)
    until = datetime.fromtimestamp(datetime.now().timestamp() + left).strftime("%H:%M")
    scope = ", ".join(user.collections) if user.collections and user.role != "admin" else "all collections"
    st.caption(f"Signed in as **{user.name}** ({user.role}; {scope}), until {until}.")
    if not oidc:
        st.button("Sign out", key="sign_out", icon=":material/logout:", on_click=_sign_out, args=(state,))
    elif st.button("Sign out", key="sign_out", icon=":material/logout:"):
        state.audit.record(user.name, "sign_out", detail={"method": "oidc"})
        _oidc_sign_out()


# -- single sign-on ------------------------------------------------------------------------------------------
class _AuditRefusedCallbacks(logging.Handler):
    """Writes a refused OAuth callback (a token that failed its checks, an error from the provider) to the
    audit trail: Streamlit handles the callback itself and only logs it. Nobody is named: no token was
    accepted."""

    def __init__(self, state: StateStore) -> None:
        super().__init__(logging.WARNING)
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        if not any(part in str(record.msg) for part in _CALLBACK_FAILURES):
            return
        reason = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            reason += f" ({type(error).__name__}: {error})"
        try:
            detail = {"method": "oidc", "reason": reason[:300]}
            self.state.audit.record("?", "sign_in_failed", outcome="refused", detail=detail)
        except Exception:  # a logging handler must not raise into Streamlit's request handling
            self.handleError(record)


@st.cache_resource(show_spinner=False)
def _watch_callbacks(key: str, _state: StateStore) -> _AuditRefusedCallbacks:
    """Once per process and state store: the handler on Streamlit's auth logger."""
    handler = _AuditRefusedCallbacks(_state)
    logging.getLogger(STREAMLIT_AUTH_LOGGER).addHandler(handler)
    return handler


class _Once:
    """Which sign-ins this process has audited: each new tab reads the same cookie, one sign-in is one event."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            return True


@st.cache_resource(show_spinner=False)
def _audited() -> _Once:
    return _Once()


def _oidc_user(settings: Settings, state: StateStore) -> User:
    """The signed-in person, mapped to a role; else the single sign-on page (or a refusal) and a stop."""
    _watch_callbacks(settings.model_dump_json(), state)
    if "is_logged_in" not in st.user:  # no [auth] secrets: not started by `docqa ui`
        st.error(
            "Single sign-on is not set up in this Streamlit process: start the UI with `docqa ui`, which hands "
            "the auth.oidc_* settings to Streamlit (docs/auth.md).",
            icon=":material/error:",
        )
        st.stop()
    if not st.user.is_logged_in:
        st.title("Sign in to docqa")
        st.caption("With your company account, at your sign-in provider.")
        if st.button("Sign in with single sign-on", type="primary", icon=":material/login:", key="sso_sign_in"):
            st.login()
        st.stop()
    claims: dict[str, Any] = {k: v for k, v in st.user.to_dict().items() if k != "tokens"}
    once = sign_in_id(claims)
    issued = claims.get("iat")
    expires_at = (float(issued) if isinstance(issued, int | float) else time.time()) + settings.auth.session_ttl_s
    name = str(claim(claims, settings.auth.oidc_name_claim) or claims.get("sub") or "?")
    if time.time() >= expires_at:
        if _audited().first(f"expired:{once}"):
            state.audit.record(name, "session_expired", detail={"method": "oidc"})
        _oidc_sign_out()
    try:
        user = user_from_claims(claims, settings.auth)
    except SignInError as exc:
        if _audited().first(f"refused:{once}"):
            detail = {"method": "oidc", "reason": str(exc), "address": client_address()}
            state.audit.record(name, "sign_in_failed", outcome="refused", detail=detail)
        st.title("Sign in to docqa")
        st.error(f"Not signed in: {exc}.", icon=":material/lock:")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            _oidc_sign_out()
        st.stop()
    if _audited().first(f"in:{once}"):
        detail = {"role": user.role, "method": "oidc", "address": client_address()}
        state.audit.record(user.name, "sign_in", detail=detail)
    st.session_state[OIDC_KEY] = {"name": user.name, "expires_at": expires_at}
    return user


def _oidc_sign_out() -> None:
    """Forget this session and have the browser drop Streamlit's cookie (and sign out at the provider, when it
    offers an end-session endpoint)."""
    _forget_session()
    st.logout()
    st.stop()
