"""The sidebar shared by every page: who is signed in (and sign-out), the collection (only those the user may
ask), model or LoRA adapter, retrieval knobs, new conversation.

It is drawn by the entry script on every page, so the widgets (and their values) live as long as the
browser session, whichever page is showing.
"""

from __future__ import annotations

import streamlit as st

from docqa.auth.access import StaffActions
from rag.pipeline import preferred_model
from ui.auth import account_box
from ui.state import ChatOptions, forget_served_models, reset_conversation, served_models


def _model_label(name: str, base: str) -> str:
    # "fine-tuned", not "LoRA": one adapter alone is served merged into the weights (docs/operations.md)
    return f"{name} (base model)" if name == base else f"{name} (fine-tuned)"


def render_sidebar(actions: StaffActions) -> ChatOptions:
    services = actions.services
    settings = services.settings
    with st.sidebar:
        account_box(actions.user, actions.state)
        st.button(
            "New conversation",
            icon=":material/add_comment:",
            width="stretch",
            on_click=reset_conversation,
            args=(st.session_state,),
            key="new_conversation",
        )

        names = [c.name for c in actions.collections()]  # only the collections this user may ask
        collection: str | None = None
        if names:
            wanted = st.session_state.pop("select_collection", None)  # set by an upload into a new collection
            if wanted in names:
                st.session_state["collection"] = wanted
            default = names.index(settings.collection) if settings.collection in names else 0
            collection = st.selectbox("Collection", names, index=default, key="collection")
        else:
            st.caption(
                "No collection yet: upload documents on the Documents page."
                if actions.user.at_least("editor")
                else "No collection you may ask has documents yet."
            )

        st.subheader("Answer settings")
        models, error = served_models(services)
        base = settings.llm_model_name
        if error:
            st.error(error, icon=":material/cloud_off:")
            if st.button("Retry the model server", key="retry_models"):
                forget_served_models()
                st.rerun()
            model = base
        else:
            options = models or [base]
            # The API's and the widget's default too: the shipped adapter when the server has it.
            preferred = preferred_model(settings, options)
            default = options.index(preferred) if preferred in options else 0
            model = st.selectbox(
                "Model",
                options,
                index=default,
                key="model",
                format_func=lambda name: _model_label(name, base),
                help="The base model or an adapter fine-tuned on your documents (as the model server lists them).",
            )
        top_k = st.slider(
            "Passages given to the model (top-k)",
            1,
            settings.ui.max_top_k,
            min(settings.retrieval.top_k, settings.ui.max_top_k),
            key="top_k",
            help="More passages give the model more to go on, at the cost of a longer prompt.",
        )
        has_reranker = bool(settings.retrieval.reranker_model)
        rerank = st.toggle(
            "Rerank with the cross-encoder",
            value=settings.retrieval.rerank and has_reranker,
            key="rerank",
            disabled=not has_reranker,
            help=None
            if has_reranker
            else "No reranker is configured: set DOCQA_RETRIEVAL_RERANKER_MODEL to a CrossEncoder path.",
        )
    return ChatOptions(
        collection=collection, model=model, top_k=top_k, rerank=rerank, models_error=error, models=models
    )
