"""The checked actions the UI calls (``docqa.auth.access.StaffActions``) and UI sessions, over real
services (the bundled embedder, a real index) and the SQLite state store: a hidden button is not a
permission, so each action is refused here too, and audited."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docqa.auth.access import NOBODY, StaffActions
from docqa.auth.errors import AccountLockedError, AddressLockedError, PermissionDeniedError, SignInError
from docqa.auth.sessions import KEY, current_user, sign_in, sign_out
from docqa.services import Services
from docqa.state import StateStore, open_state
from rag.settings import Settings
from rag.types import Question

PASSWORD = "correct horse battery"


@pytest.fixture
def state(settings: Settings) -> Iterator[StateStore]:
    store = open_state(settings)
    yield store
    store.close()


@pytest.fixture
def indexed(services: Services, tmp_path: Path) -> Services:
    for collection in ("support", "legal"):
        src = tmp_path / f"{collection}.md"
        src.write_text(f"# {collection}\n\nThe {collection} team answers within two days.\n")
        assert services.ingestor.ingest([src], collection, prune=False).ok
    return services


def as_user(services: Services, state: StateStore, name: str, role: str, collections: tuple[str, ...]) -> StaffActions:
    return StaffActions(services, state, state.users.add(name, PASSWORD, role, collections))


def test_a_reader_may_ask_its_collections_and_change_nothing(indexed: Services, state: StateStore) -> None:
    reader = as_user(indexed, state, "rita", "reader", ("support",))
    assert [c.name for c in reader.collections()] == ["support"]
    assert reader.passages_only(Question("Who answers?", "support")).citations
    with pytest.raises(PermissionDeniedError, match="may not ask in collection 'legal'"):
        reader.stream(Question("Who answers?", "legal"))
    with pytest.raises(PermissionDeniedError, match="may not upload documents"):
        reader.save_upload("support", "x.md", io.BytesIO(b"# x\n\ntext\n"))
    document = indexed.reader("support").documents()[0].path
    with pytest.raises(PermissionDeniedError, match="may not delete documents"):
        reader.delete("support", document)
    assert [d.path for d in indexed.reader("support").documents()] == [document], "nothing was deleted"
    with pytest.raises(PermissionDeniedError, match="may not list accounts"):
        reader.accounts()
    assert not (indexed.settings.state_dir / "uploads" / "support").exists(), "nothing was saved"
    denied = [(e.actor, e.detail["tried"], e.collection) for e in state.audit.list() if e.action == "denied"]
    assert denied == [
        ("rita", "ask", "legal"),
        ("rita", "upload documents", "support"),
        ("rita", "delete documents", "support"),
        ("rita", "list accounts", None),
    ]


def test_an_editor_changes_its_collections_only_and_each_change_is_audited(
    indexed: Services, state: StateStore
) -> None:
    editor = as_user(indexed, state, "ed", "editor", ("support",))
    saved = editor.save_upload("support", "guide.md", io.BytesIO(b"# Guide\n\nPress the blue button.\n"))
    assert editor.ingest([saved], "support").added == [str(saved.path)]
    with pytest.raises(PermissionDeniedError):
        editor.ingest([saved], "legal")
    report = editor.delete("support", str(saved.path))
    assert report.removed and not saved.path.exists(), "the uploaded copy goes with the document"
    legal = indexed.reader("legal").documents()[0].path
    with pytest.raises(PermissionDeniedError):
        editor.delete("legal", legal)
    events = [(e.action, e.outcome, e.collection, e.target) for e in state.audit.list()]
    assert events == [
        ("upload", "ok", "support", "guide.md"),
        ("denied", "refused", "legal", "guide.md"),
        ("delete", "ok", "support", "guide.md"),
        ("denied", "refused", "legal", "legal.md"),
    ]


def test_an_admin_and_no_sign_in_may_use_every_collection(indexed: Services, state: StateStore) -> None:
    admin = as_user(indexed, state, "ada", "admin", ("support",))  # a grant list does not narrow an admin
    assert [c.name for c in admin.collections()] == ["legal", "support"]
    assert admin.may_edit("legal") and StaffActions(indexed, state, NOBODY).may_edit("legal")


def test_feedback_carries_the_user_and_the_question_text_only_when_asked(indexed: Services, state: StateStore) -> None:
    reader = as_user(indexed, state, "rita", "reader", ("support",))
    record = reader.add_feedback(rating="up", question="Who answers?", answer="The team.", collection="support")
    assert state.feedback.get(record.id).user == "rita"
    with pytest.raises(PermissionDeniedError):
        reader.add_feedback(rating="up", question="q", answer="a", collection="legal")
    other = as_user(indexed, state, "otto", "reader", ())
    with pytest.raises(PermissionDeniedError, match="may not change another person's feedback"):
        other.update_feedback(record.id, rating="down")
    reader.update_feedback(record.id, comment="right page")
    assert state.feedback.get(record.id).comment == "right page"
    assert state.feedback.get(record.id).rating == "up"
    reader.stream(Question("Who answers?", "support"))
    with_text = Services(indexed.settings.with_overrides(audit__log_questions=True), embedder=indexed.embedder)
    logged = StaffActions(with_text, state, reader.user)
    logged.stream(Question("Who answers, really?", "support"))
    trail = state.audit.list()
    assert "Who answers?" not in repr(trail[:-1])
    assert trail[0].action == "feedback" and trail[0].detail == {"rating": "up"}
    assert [(e.actor, e.action) for e in trail[1:4]] == [("rita", "denied"), ("otto", "denied"), ("rita", "feedback")]
    assert trail[-1].action == "ask" and trail[-1].detail == {"question": "Who answers, really?"}


def test_sessions_expire_end_and_follow_the_account(settings: Settings, state: StateStore) -> None:
    state.users.add("rita", PASSWORD, "reader")
    session: dict = {}
    with pytest.raises(SignInError):
        sign_in(state, settings, session, "rita", "wrong password")
    assert KEY not in session
    user = sign_in(state, settings, session, " rita ", PASSWORD)
    assert current_user(state, session) == user
    assert session[KEY]["expires_at"] == pytest.approx(time.time() + settings.auth.session_ttl_s, abs=5)
    state.users.set_role("rita", "editor")
    assert current_user(state, session).role == "editor", "a role change applies at the next click"
    session[KEY]["expires_at"] = time.time() - 1
    assert current_user(state, session) is None and KEY not in session
    sign_in(state, settings, session, "rita", PASSWORD)
    state.users.remove("rita")
    assert current_user(state, session) is None, "a removed account's session ends"
    sign_out(state, session)
    assert [e.action for e in state.audit.list()] == [
        "sign_in_failed", "sign_in", "session_expired", "sign_in",
    ]  # fmt: skip


def test_a_locked_sign_in_is_audited_with_its_duration(settings: Settings, state: StateStore) -> None:
    state.users.add("rita", PASSWORD, "reader")
    for _ in range(settings.auth.max_failures - 1):
        with pytest.raises(SignInError):
            sign_in(state, settings, {}, "rita", "wrong password")
    with pytest.raises(AccountLockedError):
        sign_in(state, settings, {}, "rita", "wrong password")
    last = state.audit.list()[-1]
    assert (last.action, last.outcome) == ("sign_in_locked", "refused")
    assert settings.auth.lockout_s - 5 <= last.detail["locked_s"] <= settings.auth.lockout_s


def test_failed_sign_ins_are_limited_per_address_whatever_the_names(tmp_path: Path) -> None:
    """Three failures from one address (an unknown name, two accounts' wrong passwords) use its tries: then
    even a right password from there is refused, says for how long, and is audited; another address, and
    successful sign-ins, are not affected."""
    settings = Settings(data_dir=tmp_path / "data").with_overrides(auth__address_max_failures=3, auth__lockout_s=3000)
    state = open_state(settings)
    try:
        for name in ("rita", "ed", "otto"):
            state.users.add(name, PASSWORD, "reader")
        for _ in range(5):  # successes do not count: a team behind one NAT address signs in every morning
            sign_in(state, settings, {}, "otto", PASSWORD, "10.0.0.9")
        for name in ("nobody", "rita"):
            with pytest.raises(SignInError) as caught:
                sign_in(state, settings, {}, name, "wrong password", "10.0.0.9")
            assert not isinstance(caught.value, AddressLockedError)
        with pytest.raises(AddressLockedError, match=r"your address \(10.0.0.9\); try again in about 1[67] minute"):
            sign_in(state, settings, {}, "ed", "wrong password", "10.0.0.9")  # the last try
        session: dict = {}
        with pytest.raises(AddressLockedError, match=r"try again in about 1[67] minute"):
            sign_in(state, settings, session, "otto", PASSWORD, "10.0.0.9")
        assert KEY not in session
        assert sign_in(state, settings, {}, "otto", PASSWORD, "10.0.0.10").name == "otto", "another address"
        assert state.users.get("ed").failures == 1 and not state.users.get("otto").locked_for()
        trail = [(e.actor, e.action, e.detail.get("address")) for e in state.audit.list() if e.outcome == "refused"]
        assert trail == [
            ("nobody", "sign_in_failed", "10.0.0.9"),
            ("rita", "sign_in_failed", "10.0.0.9"),
            ("ed", "sign_in_failed", "10.0.0.9"),
            ("otto", "sign_in_throttled", "10.0.0.9"),
        ]
        throttled = next(e for e in state.audit.list() if e.action == "sign_in_throttled")
        assert 900 <= throttled.detail["retry_s"] <= 1000  # a try every 3000 / 3 s
        assert "try again in 45 seconds" in str(AddressLockedError("10.0.0.9", 45.2))
        off = settings.with_overrides(auth__address_max_failures=0)
        for _ in range(5):
            with pytest.raises(SignInError) as caught:
                sign_in(state, off, {}, "nobody", "wrong password", "10.0.0.11")
            assert not isinstance(caught.value, AddressLockedError)
    finally:
        state.close()
