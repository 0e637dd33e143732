"""Single sign-on in a real browser: `docqa ui` (auth.method = 'oidc', so Streamlit's st.login with Authlib)
against a real OpenID Connect provider that this test starts on 127.0.0.1 (tests/oidc_provider.py), driven by
headless Chromium. A 'staff' group signs in as a reader of 'support' and sees no uploader; 'docs-editors'
gets the uploader; sign-out ends it; groups with no role are refused; an ID token signed with a key not in
the provider's JWKS, or with claims changed after signing (adding the admins' group), signs nobody in. The
audit trail holds the sign-ins, the refusals and the sign-out, and never the client secret."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docqa.state import open_state
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.helpers import CHROMIUM, closed_llm_url
from tests.oidc_provider import Provider, running_provider
from tests.ui.conftest import running_ui
from tests.ui.helpers import RunningUI, fresh_tab, ingest_support_and_legal

WAIT_MS = 120_000
CLIENT_SECRET = "client-secret-that-must-stay-hidden"
RITA = {"sub": "u-rita", "email": "rita@example.com", "name": "Rita", "groups": ["staff"]}
ED = {"sub": "u-ed", "email": "ed@example.com", "name": "Ed", "groups": ["staff", "docs-editors"]}
CY = {"sub": "u-cy", "email": "cy@example.com", "name": "Cy", "groups": ["contractors"]}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium missing: run `make browser`"),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(client_secret=CLIENT_SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def oidc_settings(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder, provider: Provider
) -> Settings:
    """Two collections; 'staff' reads 'support', 'docs-editors' edits, 'docqa-admins' is admin; no model server."""
    root = tmp_path_factory.mktemp("oidc-browser")
    settings = Settings(data_dir=root / "data").with_overrides(
        llm__base_url=closed_llm_url(),
        auth__method="oidc",
        auth__oidc_issuer=provider.issuer,
        auth__oidc_client_id=provider.client_id,
        auth__oidc_client_secret=CLIENT_SECRET,
        auth__oidc_redirect_uri="http://127.0.0.1:{port}/oauth2callback",  # the address the browser uses
        auth__oidc_group_roles={"staff": "reader", "docs-editors": "editor", "docqa-admins": "admin"},
        auth__oidc_group_collections={"staff": ["support"]},
    )
    ingest_support_and_legal(settings, embedder, root)
    return settings


@pytest.fixture(scope="module")
def ui(oidc_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUI]:
    with running_ui(oidc_settings, tmp_path_factory.mktemp("oidc-ui-log") / "streamlit.log") as running:
        yield running


@pytest.fixture
def page(ui: RunningUI, provider: Provider, tmp_path: Path):
    """A fresh browser profile on the UI's front page; the provider's tampering is off again afterwards."""
    try:
        with fresh_tab(ui.url, tmp_path / "chromium-profile", WAIT_MS) as tab:
            yield tab
    finally:
        provider.tamper = None


def sso_sign_in(page, provider: Provider, user: dict) -> int:
    """Click the sign-in button as ``user`` at the provider; returns the provider's token count before."""
    from playwright.sync_api import expect

    provider.user = user
    before = provider.tokens_issued
    button = page.get_by_role("button", name="Sign in with single sign-on")
    expect(button).to_be_visible()
    button.click()
    return before


def wait_for_token(provider: Provider, before: int) -> None:
    """The flow went through the provider: it issued an ID token (good or tampered) to the UI's server."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while provider.tokens_issued <= before:
        assert time.monotonic() < deadline, "the provider never issued a token: the sign-in flow broke earlier"
        time.sleep(0.2)


def open_documents(page) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_text("Documents").click()
    expect(page.get_by_role("heading", name="Documents", exact=True)).to_be_visible()


def test_a_reader_group_signs_in_sees_no_upload_and_signs_out(page, provider: Provider, ui: RunningUI) -> None:
    from playwright.sync_api import expect

    wait_for_token(provider, sso_sign_in(page, provider, RITA))
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("Signed in as rita@example.com (reader; support)")
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled()
    open_documents(page)
    expect(page.get_by_text("Documents in support")).to_be_visible()
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    assert page.get_by_test_id("stException").count() == 0

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in with single sign-on")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]
    page.goto(ui.url, wait_until="domcontentloaded")
    expect(page.get_by_role("button", name="Sign in with single sign-on")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)


def test_an_editor_group_gets_the_uploader(page, provider: Provider) -> None:
    from playwright.sync_api import expect

    wait_for_token(provider, sso_sign_in(page, provider, ED))
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as ed@example.com (editor; support)")
    open_documents(page)
    expect(page.get_by_test_id("stFileUploader")).to_have_count(1)
    assert page.get_by_test_id("stException").count() == 0


def test_groups_without_a_role_are_refused(page, provider: Provider) -> None:
    from playwright.sync_api import expect

    wait_for_token(provider, sso_sign_in(page, provider, CY))
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")).to_contain_text(
        "no group of theirs (contractors) has a docqa role"
    )
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)


@pytest.mark.parametrize("tamper", ["foreign_key", "altered_claims"])
def test_a_tampered_id_token_signs_nobody_in(page, provider: Provider, oidc_settings: Settings, tamper: str) -> None:
    from playwright.sync_api import expect

    provider.tamper = tamper
    failures = len(refused_callbacks(oidc_settings))
    wait_for_token(provider, sso_sign_in(page, provider, RITA))
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(refused_callbacks(oidc_settings)) <= failures:  # the UI's server refused that token
        assert time.monotonic() < deadline, "no refused sign-in was audited"
        time.sleep(0.2)
    expect(page.get_by_role("button", name="Sign in with single sign-on")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


def refused_callbacks(settings: Settings) -> list:
    state = open_state(settings)
    try:
        return [e for e in state.audit.list() if e.action == "sign_in_failed" and e.actor == "?"]
    finally:
        state.close()


def test_the_audit_trail_holds_it_and_the_secret_stays_hidden(ui: RunningUI, oidc_settings: Settings) -> None:
    """Run last in this module: what the browser tests above did, as the audit trail shows it."""
    state = open_state(oidc_settings)
    try:
        events = state.audit.list()
    finally:
        state.close()
    seen = {(e.actor, e.action, e.outcome, e.detail.get("method"), e.detail.get("role")) for e in events}
    assert ("rita@example.com", "sign_in", "ok", "oidc", "reader") in seen
    assert ("ed@example.com", "sign_in", "ok", "oidc", "editor") in seen
    assert ("rita@example.com", "sign_out", "ok", "oidc", None) in seen
    assert ("cy@example.com", "sign_in_failed", "refused", "oidc", None) in seen
    assert sum(1 for e in events if e.actor == "rita@example.com" and e.action == "sign_in") == 1
    refused = [e.detail["reason"] for e in events if e.actor == "?" and e.action == "sign_in_failed"]
    assert len(refused) == 2 and all("token exchange failed" in r for r in refused), refused
    assert not any(e.actor == "rita@example.com" and e.detail.get("role") == "admin" for e in events)
    secrets_file = oidc_settings.state_dir / "ui" / "secrets.toml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600 and CLIENT_SECRET in secrets_file.read_text()
    assert CLIENT_SECRET not in ui.log.read_text(), "the client secret is never logged"
    assert CLIENT_SECRET not in repr([e.as_json() for e in events])
