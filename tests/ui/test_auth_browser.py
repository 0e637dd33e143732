"""Sign-in, roles and lockout in a real browser: `docqa ui` (Streamlit, auth.method = 'local') on 127.0.0.1,
driven by headless Chromium. A reader signs in, asks (no model server: the passages still show) and sees
no uploader; an editor uploads into its collection and is refused another; sign-out ends the session;
five wrong passwords lock an account. The audit trail holds all of it and `docqa audit export` writes it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docqa.cli.ui_cmds import child_environment
from docqa.state import open_state
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.helpers import CHROMIUM, REPO, closed_llm_url
from tests.ui.conftest import running_ui
from tests.ui.helpers import RunningUI, fresh_tab, ingest_support_and_legal

PASSWORD = "correct horse battery"
WAIT_MS = 120_000
INGEST_WAIT_MS = 400_000  # the UI process parses in a child process and embeds on a shared CPU

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium missing: run `make browser`"),
]


@pytest.fixture(scope="module")
def auth_settings(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Settings:
    """Two collections, 'support' and 'legal'; a reader and an editor granted 'support'; no model server."""
    root = tmp_path_factory.mktemp("auth-browser")
    settings = Settings(data_dir=root / "data").with_overrides(llm__base_url=closed_llm_url(), auth__method="local")
    ingest_support_and_legal(settings, embedder, root)
    state = open_state(settings)
    state.users.add("rita", PASSWORD, "reader", ["support"])
    state.users.add("ed", PASSWORD, "editor", ["support"])
    state.users.add("lou", PASSWORD, "reader", ["support"])
    state.close()
    return settings


@pytest.fixture(scope="module")
def ui(auth_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUI]:
    with running_ui(auth_settings, tmp_path_factory.mktemp("auth-ui-log") / "streamlit.log") as running:
        yield running


@pytest.fixture
def page(ui: RunningUI, tmp_path: Path):
    """A fresh browser profile (a new session) on the UI's front page."""
    with fresh_tab(ui.url, tmp_path / "chromium-profile", WAIT_MS) as tab:
        yield tab


def sign_in(page, name: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text("Sign in to docqa")).to_be_visible()
    expect(page.get_by_role("textbox", name="Name")).to_have_count(1)  # no stale form from the last run
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def open_documents(page) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_text("Documents").click()
    expect(page.get_by_role("heading", name="Documents", exact=True)).to_be_visible()


def test_a_reader_asks_and_sees_no_upload(page) -> None:
    from playwright.sync_api import expect

    sign_in(page, "rita")
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as rita (reader; support)")
    box.fill("What colour is the status light?")
    box.press("Enter")
    assistant = page.get_by_test_id("stChatMessage").nth(1)
    expect(assistant).to_contain_text("support.md")  # the passages, though no model answers
    open_documents(page)
    expect(page.get_by_text("Documents in support")).to_be_visible()
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete from collection")).to_have_count(0)
    assert page.get_by_test_id("stException").count() == 0


def test_an_editor_uploads_to_its_collection_and_is_refused_another(page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, "ed")
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled()
    open_documents(page)
    guide = tmp_path / "guide.md"
    guide.write_text("# Guide\n\nPress the blue button to start the dock.\n")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(guide))
    page.get_by_role("button", name="Add 1 file(s) to support").click()
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlertContentSuccess")).to_contain_text(
        "support: 1 added", timeout=INGEST_WAIT_MS
    )

    page.get_by_role("textbox", name="Collection").fill("legal")
    page.get_by_role("textbox", name="Collection").press("Enter")
    # The rerun replaces the uploader; on a busy machine the old one (holding guide.md) lingers a moment.
    expect(page.get_by_test_id("stFileUploaderDropzoneInput")).to_have_count(1)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(guide))
    page.get_by_role("button", name="Add 1 file(s) to legal").click()
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")).to_contain_text(
        "ed (editor) may not upload documents in collection 'legal'"
    )
    assert page.get_by_test_id("stException").count() == 0


def test_sign_out_ends_the_session(page) -> None:
    from playwright.sync_api import expect

    sign_in(page, "rita")
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Sign in to docqa")).to_be_visible()
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
    page.reload(wait_until="domcontentloaded")
    expect(page.get_by_text("Sign in to docqa")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)


def refused(settings: Settings, name: str, count: int) -> None:
    """Wait until the audit trail holds ``count`` refused sign-ins of ``name``."""
    state = open_state(settings)
    try:
        deadline = time.monotonic() + WAIT_MS / 1000
        while sum(1 for e in state.audit.list() if e.actor == name and e.outcome == "refused") < count:
            assert time.monotonic() < deadline, f"sign-in {count} of {name} never reached the server"
            time.sleep(0.2)
    finally:
        state.close()


def test_five_wrong_passwords_lock_the_account(page, auth_settings: Settings) -> None:
    from playwright.sync_api import expect

    for attempt in range(5):
        sign_in(page, "lou", f"wrong password {attempt}")
        refused(auth_settings, "lou", attempt + 1)  # this attempt reached the server before the next one
        expect(page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")).to_contain_text(
            "is locked" if attempt == 4 else "wrong name or password"
        )
    sign_in(page, "lou")  # the right password, too late
    refused(auth_settings, "lou", 6)
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")).to_contain_text(
        re.compile(r"locked .* about 15 minute")
    )
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)


def test_the_audit_trail_holds_it_and_exports(ui: RunningUI, auth_settings: Settings, tmp_path: Path) -> None:
    """Run last in this module: what the browser tests above did, as the audit trail and its export show."""
    out = tmp_path / "audit.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", "audit", "export", "--out", str(out)],
        cwd=REPO,
        env=child_environment(auth_settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    seen = {(e["actor"], e["action"], e["outcome"], e["collection"], e["target"]) for e in events}
    assert ("rita", "sign_in", "ok", None, None) in seen and ("ed", "sign_in", "ok", None, None) in seen
    assert ("rita", "ask", "ok", "support", None) in seen
    assert ("ed", "upload", "ok", "support", "guide.md") in seen
    assert ("ed", "denied", "refused", "legal", "guide.md") in seen
    assert ("rita", "sign_out", "ok", None, None) in seen
    assert sum(1 for e in events if e["actor"] == "lou" and e["action"] == "sign_in_failed") == 4
    assert sum(1 for e in events if e["actor"] == "lou" and e["action"] == "sign_in_locked") == 2
    assert "status light" not in out.read_text(), "no question text without audit.log_questions"
    assert PASSWORD not in out.read_text() and "wrong password" not in out.read_text()
