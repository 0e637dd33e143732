"""What the UI keeps between reruns: settings and services once per process (``st.cache_resource``),
the conversation and the sidebar choices per browser session (``st.session_state``).

Streamlit reruns every page script on each click, so nothing heavy may be built at the top of a page:
pages call these getters, which build on the first call and hand back the cached object afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from docqa.auth.access import StaffActions
from docqa.services import Services, build
from docqa.state import StateStore, open_state
from rag.embedder import SentenceTransformerEmbedder, build_embedder
from rag.errors import DocqaError
from rag.settings import EmbedderSettings, Settings, load_settings

MODELS_TTL_S = 15  # how long the list of served models is reused before the model server is asked again


def _environment_key() -> tuple[tuple[str, str], ...]:
    """What load_settings() depends on: the DOCQA_* variables and the working directory (docqa.toml)."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("DOCQA_")))
    return (*env, ("cwd", os.getcwd()))


@st.cache_resource(show_spinner=False)
def _settings_for(key: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings()


def get_settings() -> Settings:
    """The settings, loaded once per process (and again only if the DOCQA_* environment changes)."""
    return _settings_for(_environment_key())


@st.cache_resource(show_spinner="Loading the embedding model…")
def _embedder_for(key: str, _settings: EmbedderSettings) -> SentenceTransformerEmbedder:
    embedder = build_embedder(_settings)
    embedder.warm_up()
    return embedder


@st.cache_resource(show_spinner=False)
def _services_for(key: str, _settings: Settings) -> Services:
    # One loaded embedder per process even when two settings differ only elsewhere (tests, data dirs).
    return build(_settings, embedder=_embedder_for(_settings.embedder.model_dump_json(), _settings.embedder))


def get_services(settings: Settings) -> Services:
    """The composition root, built once per distinct settings and shared by every browser session."""
    return _services_for(settings.model_dump_json(), settings)


@st.cache_resource(show_spinner=False)
def _state_for(key: str, _settings: Settings) -> StateStore:
    return open_state(_settings)  # one per settings: a database backend keeps a connection pool


def get_state(settings: Settings) -> StateStore:
    """The configured state store (state.backend): feedback, accounts, the audit trail."""
    return _state_for(settings.model_dump_json(), settings)


def get_actions() -> StaffActions:
    """The signed-in user's checked actions, set by the entry script before any page runs."""
    return st.session_state["staff_actions"]


@st.cache_data(ttl=MODELS_TTL_S, show_spinner=False)
def _served_models(key: str, _services: Services) -> tuple[list[str], str | None]:
    try:
        return list(_services.generator.models()), None
    except DocqaError as exc:  # ModelServerError above all: shown in the page, the rest stays usable
        return [], str(exc)


def served_models(services: Services) -> tuple[list[str], str | None]:
    """(models the server lists, error message or None); cached briefly so reruns stay fast."""
    return _served_models(services.settings.model_dump_json(), services)


def forget_served_models() -> None:
    _served_models.clear()


@dataclass
class ChatOptions:
    """The sidebar's choices for the next question."""

    collection: str | None
    model: str | None
    top_k: int
    rerank: bool
    models_error: str | None = None
    models: list[str] = field(default_factory=list)


def new_message_id() -> str:
    return uuid.uuid4().hex[:12]


def conversation(session: MutableMapping[str, Any]) -> list[dict[str, Any]]:
    """This browser session's messages (dicts, so they survive reruns without pickling surprises)."""
    return session.setdefault("messages", [])


def reset_conversation(session: MutableMapping[str, Any]) -> None:
    """Start over: forget the messages and the widgets that belonged to them."""
    for msg in session.get("messages", []):
        for prefix in ("fb_", "fbc_", "fbform_"):
            session.pop(f"{prefix}{msg.get('id')}", None)
    session["messages"] = []
