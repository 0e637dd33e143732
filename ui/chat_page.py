"""The chat page: ask, watch the answer stream in, read its sources, rate it.

Run by ``st.navigation`` from ui/app.py, which has already drawn the sidebar and left its choices in
``st.session_state["chat_options"]``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from docqa.auth.access import StaffActions
from rag.errors import DocqaError, ModelServerError
from rag.types import Citation, Question
from ui.answering import (
    AnswerStream,
    assistant_message,
    checking_message,
    error_message,
    escape_markdown,
    history_for_pipeline,
    quote_answer_markdown,
    shown_sources,
)
from ui.sources import render_sources
from ui.state import ChatOptions, conversation, get_actions, new_message_id

RATING_OF_VALUE = {0: "down", 1: "up"}  # st.feedback("thumbs") values


def collection_problem(actions: StaffActions, options: ChatOptions) -> str | None:
    """Why no question can be asked yet, or None."""
    if options.collection is None:
        if not actions.user.at_least("editor"):
            return "No collection you may ask has documents yet: ask an editor to upload some."
        return "No documents are indexed yet. Upload some on the **Documents** page, then ask away."
    info = next((c for c in actions.collections() if c.name == options.collection), None)
    if info is None or info.documents == 0:
        return (
            f"Collection **{options.collection}** has no documents. Upload some on the **Documents** page, "
            "or pick another collection in the sidebar."
        )
    return None


def render_feedback(msg: dict[str, Any], actions: StaffActions) -> None:
    """Thumbs and an optional comment; stored (with the user's name) as soon as they are given, updated when
    changed."""
    rating = RATING_OF_VALUE.get(st.feedback("thumbs", key=f"fb_{msg['id']}"))
    try:
        if rating != msg.get("rating"):
            if rating is None:
                actions.withdraw_feedback(msg["feedback_id"], msg.get("collection"))
                msg.pop("feedback_id", None)
            elif msg.get("feedback_id"):
                actions.update_feedback(msg["feedback_id"], rating=rating)
            else:
                _, cited = shown_sources(msg)
                record = actions.add_feedback(
                    rating=rating,
                    question=msg["question"],
                    answer=msg["content"],
                    citations=cited,
                    comment=msg.get("comment"),
                    collection=msg.get("collection"),
                    model=msg.get("model"),
                )
                msg["feedback_id"] = record.id
            msg["rating"] = rating
        if msg.get("feedback_id"):
            with st.form(key=f"fbform_{msg['id']}", border=False, enter_to_submit=True):
                comment = st.text_input(
                    "Comment (optional)",
                    key=f"fbc_{msg['id']}",
                    placeholder="What was right or wrong about this answer?",
                )
                if st.form_submit_button("Send comment"):
                    actions.update_feedback(msg["feedback_id"], comment=comment)
                    msg["comment"] = comment
                    st.toast("Thanks, your comment is saved.", icon=":material/check:")
            if msg.get("comment"):
                st.caption("Comment saved.")
    except DocqaError as exc:
        st.error(f"Your feedback could not be saved: {exc}", icon=":material/error:")


def _timing(msg: dict[str, Any]) -> str:
    parts = [msg["model"]] if msg.get("model") else []
    timing = msg.get("timing") or {}
    stages = timing.get("stages_ms")
    if stages:
        parts += [f"{stage.replace('_', ' ')} {ms / 1000:.2f} s" for stage, ms in stages.items()]
    elif timing:
        parts.append(f"retrieval {timing['retrieval_ms']} ms")
        if timing.get("generation_ms"):
            parts.append(f"generation {timing['generation_ms'] / 1000:.1f} s")
    return " · ".join(parts)


def render_assistant(msg: dict[str, Any], actions: StaffActions, *, latest: bool) -> None:
    if msg.get("error"):
        st.error(msg["error"], icon=":material/error:")
    else:
        # A quoted table row or command shows as a small table or as code; any other answer as its text.
        st.markdown(quote_answer_markdown(msg) or escape_markdown(msg["content"]))
        if msg.get("mode") == "quote":
            st.caption(
                "Quoted from the source: the model's own answer could not be shown as it was.",
                help="docqa shows a generated answer only when it answers the question and every claim in "
                "it is backed by the cited passage; otherwise the best supporting sentence, quoted.",
            )
    render_sources(msg, expanded=latest)
    if not msg.get("error"):
        st.caption(_timing(msg))
        render_feedback(msg, actions)


def as_question(text: str, options: ChatOptions, history: list[dict[str, str]]) -> Question:
    """The pipeline's request for a question asked with the sidebar's choices."""
    assert options.collection is not None, "no question is asked without a collection"
    return Question(
        text, options.collection, history=history, top_k=options.top_k, rerank=options.rerank, model=options.model
    )


def _passages_without_model(actions: StaffActions, question: Question) -> list[Citation]:
    """When the model is down before retrieval ran, still show what the documents say."""
    try:
        answer = actions.passages_only(question)
    except DocqaError:
        return []
    return answer.citations


def answer_question(question: str, actions: StaffActions, options: ChatOptions) -> None:
    messages = conversation(st.session_state)
    asked = as_question(question, options, history_for_pipeline(messages))
    messages.append({"id": new_message_id(), "role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    msg_id = new_message_id()
    with st.chat_message("assistant"):
        placeholder = st.empty()
        stream: AnswerStream | None = None
        try:
            stream = AnswerStream(actions.stream(asked))  # refused unless the user may ask this collection
            with placeholder.container(), st.spinner("Searching the documents…"):
                found = stream.find_sources()
            checking = checking_message(f"{msg_id}-checking", stream.passages, actions.services.settings.answer.mode)
            if found and checking is not None:
                with placeholder.container(), st.spinner("Checking the answer…"):
                    render_sources(checking, expanded=False)
                    stream.prime()
            else:
                stream.prime()
            with placeholder.container():
                st.write_stream(stream.tokens())
        except ModelServerError as exc:
            placeholder.empty()
            passages = (stream.passages if stream else []) or _passages_without_model(actions, asked)
            msg = error_message(msg_id, question, str(exc), passages, collection=options.collection)
        except DocqaError as exc:
            placeholder.empty()
            msg = error_message(msg_id, question, str(exc), [], collection=options.collection)
        else:
            assert stream is not None and stream.answer is not None, "the pipeline ended without its final event"
            placeholder.empty()
            msg = assistant_message(msg_id, question, stream.answer, collection=options.collection, model=options.model)
        messages.append(msg)
        render_assistant(msg, actions, latest=True)


def main() -> None:
    actions = get_actions()
    settings = actions.services.settings
    options: ChatOptions = st.session_state["chat_options"]

    st.title("Ask your documents")
    if options.collection:
        st.caption(
            f"Answers come only from the documents in **{options.collection}**, with their sources. "
            f"Model: {options.model}."
        )
    if options.models_error:
        st.warning(
            "**The model server is not answering**, so questions cannot be answered right now; the passages "
            f"that match a question are still shown.\n\n{options.models_error}",
            icon=":material/cloud_off:",
        )

    messages = conversation(st.session_state)
    for i, msg in enumerate(messages):
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(escape_markdown(msg["content"]))
            else:
                render_assistant(msg, actions, latest=i == len(messages) - 1)

    problem = collection_problem(actions, options)
    if problem:
        st.info(problem, icon=":material/info:")
        if actions.user.at_least("editor"):
            st.page_link("documents_page.py", label="Go to Documents", icon=":material/folder_open:")
    limit = settings.api.max_question_chars
    question = st.chat_input("Ask a question about your documents", disabled=problem is not None, max_chars=limit)
    if question and question.strip() and problem is None:
        answer_question(question.strip(), actions, options)


if __name__ == "__main__":  # st.navigation runs page files as __main__
    main()
