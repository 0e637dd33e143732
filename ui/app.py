"""docqa staff UI, the entry script: `docqa ui` runs `streamlit run ui/app.py`.

Settings come from the environment (DOCQA_*), loaded once per process; everything goes through
``docqa.services``. With ``auth.method`` 'local' or 'oidc' (single sign-on, ``st.login``) nobody sees
anything before signing in (``ui.auth``); every page then acts through ``docqa.auth.access.StaffActions``
for the signed-in user, which checks each action against the user's role and collections and audits it.
Pages: Chat (default), Documents, and Admin (admins).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the repository root that holds the packages.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import logging  # noqa: E402

import streamlit as st  # noqa: E402

from docqa.auth.access import StaffActions  # noqa: E402
from rag.errors import DocqaError  # noqa: E402
from ui.auth import refuse_network_without_sign_in, signed_in_user  # noqa: E402
from ui.sidebar import render_sidebar  # noqa: E402
from ui.state import get_services, get_settings, get_state  # noqa: E402

log = logging.getLogger("docqa.ui")

_HERE = Path(__file__).resolve().parent


def main() -> None:
    st.set_page_config(page_title="docqa", page_icon=":material/forum:", layout="wide")

    try:
        settings = get_settings()
        refuse_network_without_sign_in(settings)
        state = get_state(settings)
        user = signed_in_user(settings, state)  # the sign-in form and a stop, until someone signs in
    except DocqaError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()

    pages = [
        st.Page(_HERE / "chat_page.py", title="Chat", icon=":material/forum:", url_path="chat", default=True),
        st.Page(_HERE / "documents_page.py", title="Documents", icon=":material/folder_open:", url_path="documents"),
    ]
    if settings.auth.method != "none" and user.role == "admin":  # accounts exist only with sign-in
        pages.append(st.Page(_HERE / "admin_page.py", title="Admin", icon=":material/shield_person:", url_path="admin"))
    page = st.navigation(pages)

    try:
        services = get_services(settings)
        actions = StaffActions(services, state, user)
        st.session_state["staff_actions"] = actions
        st.session_state["chat_options"] = render_sidebar(actions)
    except DocqaError as exc:
        # Bad settings or an unreadable index: say so on every page rather than show a traceback.
        st.error(str(exc), icon=":material/error:")
        st.stop()

    page.run()


# A worker process started with 'spawn' (ingest's parse worker) re-imports its parent's main module, which
# under AppTest is this script: there is no page to draw there.
if __name__ != "__mp_main__":
    main()
