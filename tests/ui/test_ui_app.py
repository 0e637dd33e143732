"""The Streamlit app driven by AppTest over a real index: answers with sources (real vLLM), uploads,
deletion, feedback, and the model-server-down and empty-collection paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.feedback import FeedbackStore, read_jsonl
from rag.settings import Settings
from rag.store import CollectionPaths, acquire_lock, release_lock
from tests.helpers import REPO, closed_llm_url
from tests.ui.helpers import use_settings

APP = str(REPO / "ui" / "app.py")
RUN_TIMEOUT_S = 180  # the first run in a process loads the embedder; answers come from vLLM on CPU
WARRANTY_Q = "How long is the warranty on the Sweep S3?"


def start(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> AppTest:
    use_settings(monkeypatch, settings)
    return AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> str:
    """The text of elements, with markdown's backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in elements))


def test_model_server_down_is_a_message_and_passages_still_show(
    ui_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(monkeypatch, Settings(data_dir=ui_data_dir).with_overrides(llm__base_url=closed_llm_url()))
    no_exceptions(at)
    assert at.sidebar.error, "the model picker should say the model server is unreachable"
    down = at.sidebar.error[0].value
    assert "model server is not answering" in texts(at.warning)
    assert at.sidebar.selectbox(key="collection").value == "default"

    at.chat_input[0].set_value(WARRANTY_Q).run()
    no_exceptions(at)
    assistant = at.chat_message[1]
    assert assistant.error and assistant.error[0].value, "the failed answer should carry the server's message"
    assert "unreachable" in down and "unreachable" in texts(assistant.error)
    assert "docqa model serve" in texts(assistant.error), "the message says what to do"
    (sources,) = assistant.expander
    assert sources.label.startswith("Passages retrieval found")
    assert "sweep_s3_manual.pdf" in texts(sources.markdown)
    assert not assistant.get("feedback"), "no rating for an answer that was never given"


def test_no_collection_invites_an_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(monkeypatch, Settings(data_dir=tmp_path / "data").with_overrides(llm__base_url=closed_llm_url()))
    no_exceptions(at)
    assert "No documents are indexed yet" in texts(at.info)
    assert at.chat_input[0].disabled


def test_upload_lists_deletes_and_reports_per_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "data").with_overrides(llm__base_url=closed_llm_url())
    at = start(monkeypatch, settings)
    at.switch_page("documents_page.py").run()
    no_exceptions(at)
    guide = b"# Setup\n\nConnect the Kestrel base station to a wall socket before the first cleaning run.\n"
    at.file_uploader[0].set_value([("../../guide.md", guide, "text/markdown"), ("empty.txt", b"", "text/plain")])
    at.run()
    at.button(key="ingest_button").click().run()
    no_exceptions(at)

    uploads = settings.state_dir / "uploads" / "default"
    assert (uploads / "guide.md").read_bytes() == guide
    assert not (uploads / "empty.txt").exists(), "a file that failed is not kept"
    assert "1 added" in texts(at.warning) and "1 failed" in texts(at.warning)
    assert "empty.txt** was not added" in texts(at.error)
    (table,) = at.dataframe
    assert list(table.value["Document"]) == ["guide.md"] and int(table.value["Chunks"][0]) >= 1
    assert at.sidebar.selectbox(key="collection").value == "default"

    # A second writer holding the collection: the upload is refused with the lock's message.
    lock = acquire_lock(CollectionPaths(settings.index_dir, "default"), 0)
    try:
        at.file_uploader[0].set_value(("more.md", b"# More\n\nThe dock has a blue status light.\n", "text/markdown"))
        at.run()
        at.button(key="ingest_button").click().run()
    finally:
        release_lock(lock)
    no_exceptions(at)
    assert "being written by another process" in texts(at.error)
    assert not (uploads / "more.md").exists()

    at.button(key="delete_button").click().run()
    assert "Delete **guide.md**" in texts(at.warning)
    at.button(key="confirm_delete_yes").click().run()
    no_exceptions(at)
    assert "Deleted guide.md from default" in texts(at.success)
    assert "is empty" in texts(at.info) and not at.dataframe
    assert not (uploads / "guide.md").exists()


@pytest.mark.integration
def test_question_gets_an_answer_with_sources_and_feedback_is_stored(
    vllm_server, ui_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = vllm_server.settings.with_overrides(data_dir=ui_data_dir)
    at = start(monkeypatch, settings)
    no_exceptions(at)
    assert not at.sidebar.error
    options = at.sidebar.selectbox(key="model").options
    assert settings.llm_model_name in options[0]
    if vllm_server.adapter_name:  # the adapters the server lists are offered too
        assert any(vllm_server.adapter_name in o and "fine-tuned" in o for o in options), options
    # The picker starts on the model the API and the widget answer with: the shipped adapter, served here.
    assert any(o.startswith(f"{settings.answer.adapter} ") for o in options), options
    assert at.sidebar.selectbox(key="model").value == settings.answer.adapter

    at.chat_input[0].set_value(WARRANTY_Q).run()
    no_exceptions(at)
    user, assistant = at.chat_message
    assert user.markdown[0].value == WARRANTY_Q
    answer = assistant.markdown[0].value
    assert answer.strip() and not assistant.error
    sources = assistant.expander[0]
    assert sources.label.startswith(("Sources", "Passages consulted")), sources.label
    shown = "\n".join(texts(e.markdown) for e in assistant.expander)  # cited, then the other passages
    assert "sweep_s3_manual.pdf" in shown and "page 5" in shown
    assert "relevance" in texts(sources.caption)
    assert sources.get("download_button"), "each source offers the original document"

    # Thumbs up, then a comment, then a change of mind: one stored verdict, updated.
    store = FeedbackStore.for_settings(settings)
    assistant.get("feedback")[0].set_value(1)
    at.run()
    (record,) = store.list()
    assert (record.rating, record.question, record.collection) == ("up", WARRANTY_Q, "default")
    assert record.answer and record.citations and record.model == settings.answer.adapter
    assert any(c["source"].endswith("sweep_s3_manual.pdf") for c in record.citations)
    at.text_input(key=next(k for k in _keys(at) if k.startswith("fbc_"))).set_value("cites the right page")
    at.get("form_submit_button")[0].click().run()
    at.get("feedback")[0].set_value(0)
    at.run()
    no_exceptions(at)
    (record,) = store.list()
    assert (record.rating, record.comment) == ("down", "cites the right page")
    exported = tmp_path / "feedback.jsonl"
    assert store.export_jsonl(exported) == 1 and read_jsonl(exported)[0].id == record.id

    # The conversation stays on rerun; "New conversation" clears it (the stored feedback stays).
    at.run()
    assert len(at.chat_message) == 2
    at.sidebar.button(key="new_conversation").click().run()
    assert not at.chat_message and len(store.list()) == 1


def _keys(at: AppTest) -> list[str]:
    return [w.key for w in at.text_input if w.key]
