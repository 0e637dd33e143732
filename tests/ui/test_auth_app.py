"""Sign-in and roles in the Streamlit app, driven by AppTest over a real index and a real SQLite state store:
nothing shows before sign-in, each role sees what it may do, an editor is refused outside its collections,
sign-out ends the session, five wrong passwords lock the account; the audit trail records it all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from docqa.state import StateStore, open_state
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.helpers import REPO, closed_llm_url
from tests.ui.helpers import ingest_support_and_legal, use_settings

APP = str(REPO / "ui" / "app.py")
RUN_TIMEOUT_S = 180
PASSWORD = "correct horse battery"
GUIDE = b"# Setup\n\nConnect the Kestrel base station to a wall socket before the first cleaning run.\n"


@pytest.fixture
def settings(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Settings:
    """Local sign-in over two collections, 'support' and 'legal', one small document each; no model server."""
    settings = Settings(data_dir=tmp_path / "data").with_overrides(llm__base_url=closed_llm_url(), auth__method="local")
    ingest_support_and_legal(settings, embedder, tmp_path)
    return settings


@pytest.fixture
def state(settings: Settings) -> Iterator[StateStore]:
    store = open_state(settings)
    store.users.add("rita", PASSWORD, "reader", ["support"])
    store.users.add("ed", PASSWORD, "editor", ["support"])
    yield store
    store.close()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def start(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> AppTest:
    use_settings(monkeypatch, settings)
    return AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()


def sign_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="sign_in_name").set_value(name)
    at.text_input(key="sign_in_password").set_value(password)
    return at.button[0].click().run()  # the form's submit button


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def actions(state: StateStore) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.outcome) for e in state.audit.list()]


def test_nothing_shows_before_sign_in_and_a_wrong_password_is_refused(
    settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(monkeypatch, settings)
    no_exceptions(at)
    assert "Sign in to docqa" in texts(at.title)
    assert not at.chat_input and not at.sidebar.selectbox, "nothing of the app before sign-in"
    sign_in(at, "rita", "not the password")
    assert "wrong name or password" in texts(at.error) and not at.chat_input
    sign_in(at, "nobody", PASSWORD)
    assert "wrong name or password" in texts(at.error)
    assert actions(state) == [("rita", "sign_in_failed", "refused"), ("nobody", "sign_in_failed", "refused")]


def test_a_reader_sees_granted_collections_and_no_upload_or_delete(
    settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = sign_in(start(monkeypatch, settings), "rita")
    no_exceptions(at)
    assert at.sidebar.selectbox(key="collection").options == ["support"], "legal is not granted"
    assert "Signed in as **rita** (reader; support)" in texts(at.sidebar.caption)
    at.chat_input[0].set_value("What colour is the status light?").run()
    no_exceptions(at)
    assert "status light" in texts(at.chat_message[1].expander[0].markdown), "the passages still show"
    at.switch_page("documents_page.py").run()
    no_exceptions(at)
    assert not at.file_uploader
    assert not _has(at, "delete_button") and not _has(at, "ingest_button")
    assert at.dataframe, "a reader may still see the list of documents"
    ask = [e for e in state.audit.list() if e.action == "ask"]
    assert [(e.actor, e.collection, e.detail) for e in ask] == [("rita", "support", {})], "no question text"


def test_an_editor_uploads_to_a_granted_collection_and_is_refused_another(
    settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = sign_in(start(monkeypatch, settings), "ed")
    at.switch_page("documents_page.py").run()
    no_exceptions(at)
    at.file_uploader[0].set_value(("guide.md", GUIDE, "text/markdown"))
    at.run()
    at.button(key="ingest_button").click().run()
    no_exceptions(at)
    assert "**support**: 1 added" in texts(at.success)
    assert (settings.state_dir / "uploads" / "support" / "guide.md").read_bytes() == GUIDE

    at.text_input(key="upload_collection").set_value("legal").run()
    at.file_uploader[0].set_value(("other.md", b"# Other\n\nA second guide for the legal team.\n", "text/markdown"))
    at.run()
    at.button(key="ingest_button").click().run()
    no_exceptions(at)
    assert "ed (editor) may not upload documents in collection 'legal'" in texts(at.error)
    assert not (settings.state_dir / "uploads" / "legal").exists()

    events = [(e.actor, e.action, e.outcome, e.collection, e.target) for e in state.audit.list()]
    assert ("ed", "upload", "ok", "support", "guide.md") in events
    assert ("ed", "denied", "refused", "legal", "other.md") in events


def test_sign_out_ends_the_session(settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    at = sign_in(start(monkeypatch, settings), "rita")
    assert at.chat_input
    at.sidebar.button(key="sign_out").click().run()
    no_exceptions(at)
    assert "Sign in to docqa" in texts(at.title) and not at.chat_input
    at.run()
    assert not at.chat_input, "still signed out on the next rerun"
    assert actions(state) == [("rita", "sign_in", "ok"), ("rita", "sign_out", "ok")]


def test_five_wrong_passwords_lock_the_account(
    settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(monkeypatch, settings)
    for _ in range(4):
        sign_in(at, "ed", "not the password")
        assert "wrong name or password" in texts(at.error)
    sign_in(at, "ed", "not the password")
    assert "account 'ed' is locked" in texts(at.error) and "15 minute" in texts(at.error)
    sign_in(at, "ed")
    assert "is locked" in texts(at.error) and not at.chat_input, "the right password waits for the lock"
    assert [a for _, a, _ in actions(state)] == ["sign_in_failed"] * 4 + ["sign_in_locked"] * 2


def test_too_many_failures_from_one_address_are_refused_and_say_for_how_long(
    settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two accounts' wrong passwords use this address's tries (auth.address_max_failures = 2); then even ed's
    right password is refused here, with the wait, before any account is locked."""
    at = start(monkeypatch, settings.with_overrides(auth__address_max_failures=2))
    sign_in(at, "rita", "not the password")
    assert "wrong name or password" in texts(at.error)
    sign_in(at, "ed", "not the password")
    assert re.search(r"from your address \(127\.0\.0\.1\); try again in about [78] minute", texts(at.error))
    sign_in(at, "ed")
    assert "too many failed sign-ins from your address" in texts(at.error) and not at.chat_input
    assert not state.users.get("ed").locked_for(), "the address is refused, the account is not locked"
    assert [a for _, a, _ in actions(state)] == ["sign_in_failed", "sign_in_failed", "sign_in_throttled"]


def _has(at: AppTest, key: str) -> bool:
    try:
        at.button(key=key)
    except KeyError:
        return False
    return True


def test_only_an_admin_gets_the_accounts_and_audit_page(
    settings: Settings, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.users.add("ada", PASSWORD, "admin")
    at = sign_in(start(monkeypatch, settings), "rita")
    assert "Admin" not in texts(at.sidebar.caption)
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not registered for a reader
        at.switch_page("admin_page.py")
    at = sign_in(start(monkeypatch, settings), "ada")
    assert at.sidebar.selectbox(key="collection").options == ["legal", "support"]
    at.switch_page("admin_page.py").run()
    no_exceptions(at)
    accounts, audit = at.dataframe
    assert list(accounts.value["Name"]) == ["ada", "ed", "rita"]
    assert list(accounts.value["Role"]) == ["admin", "editor", "reader"]
    assert list(audit.value["Action"])[:2] == ["sign_in", "sign_in"] and list(audit.value["Who"])[:2] == ["ada", "rita"]
