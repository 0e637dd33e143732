"""docqa staff UI, the entry script: `docqa ui` runs `streamlit run ui/app.py`.

Settings come from the environment (DOCQA_*), loaded once per process; everything goes through
``docqa.services``. Pages: Chat (default) and Documents.
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

from rag.errors import DocqaError  # noqa: E402
from ui.sidebar import render_sidebar  # noqa: E402
from ui.state import get_services, get_settings  # noqa: E402

log = logging.getLogger("docqa.ui")

st.set_page_config(page_title="docqa", page_icon=":material/forum:", layout="wide")

_HERE = Path(__file__).resolve().parent
page = st.navigation(
    [
        st.Page(_HERE / "chat_page.py", title="Chat", icon=":material/forum:", url_path="chat", default=True),
        st.Page(_HERE / "documents_page.py", title="Documents", icon=":material/folder_open:", url_path="documents"),
    ]
)

try:
    settings = get_settings()
    services = get_services(settings)
    st.session_state["chat_options"] = render_sidebar(services)
except DocqaError as exc:
    # Bad settings or an unreadable index: say so on every page rather than show a traceback.
    st.error(str(exc), icon=":material/error:")
    st.stop()

page.run()
