"""Sign-in for the staff UI: the form shown before anything else, and the account box in the sidebar.

``auth.method`` decides: 'none' (loopback only: nobody signs in, everyone is admin) or 'local' (accounts
made with `docqa users add`). The sign-in lives in this browser session's state for ``auth.session_ttl_s``
(``docqa.auth.sessions``); reloading the page starts a new session, which asks again.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from docqa.auth.access import NOBODY
from docqa.auth.errors import AccountLockedError, SignInError
from docqa.auth.network import is_loopback
from docqa.auth.sessions import current_user, expires_in, sign_in, sign_out
from docqa.auth.users import User
from docqa.state import StateStore
from rag.settings import Settings

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


def signed_in_user(settings: Settings, state: StateStore) -> User:
    """The user for this run: the signed-in account, or the sign-in form and a stop."""
    if settings.auth.method == "none":
        return NOBODY
    user = current_user(state, st.session_state)
    if user is not None:
        return user
    _sign_in_form(settings, state)
    st.stop()
    raise RuntimeError("st.stop() did not stop the script: no page is drawn without a sign-in")


def _sign_in_form(settings: Settings, state: StateStore) -> None:
    st.title("Sign in to docqa")
    if settings.auth.method == "oidc":
        st.error("auth.method 'oidc' is not available yet: use 'local'.", icon=":material/error:")
        return
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
            sign_in(state, settings, st.session_state, name, password)
        except AccountLockedError as exc:
            st.session_state["sign_in_message"] = str(exc)
        except SignInError as exc:
            st.session_state["sign_in_message"] = f"Not signed in: {exc}."
        st.rerun()


def _sign_out(state: StateStore) -> None:
    sign_out(state, st.session_state)
    for key in list(st.session_state):  # nothing of this person's session stays for the next one
        del st.session_state[key]


def account_box(user: User, state: StateStore) -> None:
    """Who is signed in, until when, and the sign-out button (drawn in the sidebar)."""
    if user is NOBODY:
        st.caption("No sign-in (this machine only).")
        return
    until = datetime.fromtimestamp(datetime.now().timestamp() + expires_in(st.session_state)).strftime("%H:%M")
    scope = ", ".join(user.collections) if user.collections and user.role != "admin" else "all collections"
    st.caption(f"Signed in as **{user.name}** ({user.role}; {scope}), until {until}.")
    st.button("Sign out", key="sign_out", icon=":material/logout:", on_click=_sign_out, args=(state,))
