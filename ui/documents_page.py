"""The documents page: upload files into a collection (with per-file progress and errors), list the
documents with their chunk counts and dates, delete one. Readers see the list only; editors upload and
delete in the collections granted to them, and ``StaffActions`` refuses (and audits) anything else.

Uploads are saved by the services' upload store (under ``<state_dir>/uploads/<collection>/``, named as
the API names them) and ingested through the services' ingestor, the same code path as `docqa ingest`.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from docqa.auth.access import StaffActions
from docqa.auth.errors import PermissionDeniedError
from docqa.services import Services
from ingest.formats import SUPPORTED_SUFFIXES
from ingest.uploads import SavedUpload
from rag.errors import CollectionNotFoundError, DocqaError
from rag.settings import Settings
from ui.progress import FileProgress
from ui.state import ChatOptions, get_actions

OUTCOME_ICON = {"added": "✅", "updated": "🔄", "unchanged": "⏸️", "failed": "❌", "pending": "⏳"}


def target_collection(settings: Settings, options: ChatOptions, actions: StaffActions) -> str:
    granted = actions.user.collections if actions.user.role != "admin" else ()
    chosen = options.collection or (granted[0] if granted else settings.collection)
    new = st.text_input(
        "Collection",
        value="",
        placeholder=f"{chosen} (pick another in the sidebar, or type a new name here)",
        key="upload_collection",
        help="Documents go into the collection chosen in the sidebar, or into a new one named here.",
    ).strip()
    return new or chosen


def ingest_uploads(actions: StaffActions, files: list[Any], collection: str) -> dict[str, Any]:
    """Save and ingest the uploads, drawing progress; returns a summary kept for the next rerun."""
    result: dict[str, Any] = {"collection": collection, "files": [], "error": None}
    services = actions.services
    try:
        # A file uploaded again under the same name replaces the earlier version.
        saved: list[SavedUpload] = [actions.save_upload(collection, f.name, io.BytesIO(f.getvalue())) for f in files]
    except PermissionDeniedError as exc:
        result["error"] = f"Not uploaded: {exc}."
        return result
    except (DocqaError, OSError) as exc:
        result["error"] = f"The files could not be saved: {exc}"
        return result
    name_of = {str(s.path): s.original for s in saved}
    bar = st.progress(0.0, text=f"Ingesting {len(saved)} file(s) into {collection}…")
    log = st.status(f"Ingesting into **{collection}**", expanded=True)

    def on_progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done} of {total} file(s) processed")

    def on_file(path: str, outcome: str) -> None:
        label = "parsed, embedding…" if outcome == "pending" else outcome
        log.write(f"{OUTCOME_ICON.get(outcome, '•')} {name_of.get(path, Path(path).name)}: {label}")

    try:
        report = actions.ingest(saved, collection, progress=FileProgress(on_progress), on_file=on_file)
    except DocqaError as exc:  # CollectionLockedError above all: another ingest is running
        log.update(label="Ingest did not run", state="error")
        result["error"] = str(exc)
        _forget_unstored(services, collection, [s.path for s in saved])
        return result
    failed = {f["path"]: f["error"] for f in report.failed}
    for s in saved:
        key = str(s.path)
        outcome = next(
            (
                o
                for o, paths in (("added", report.added), ("updated", report.updated), ("unchanged", report.unchanged))
                if key in paths
            ),
            "failed",
        )
        result["files"].append(
            {"name": s.original, "outcome": outcome, "error": failed.get(key, "") if outcome == "failed" else ""}
        )
    result["chunks"] = report.chunks
    result["seconds"] = round(report.seconds, 1)
    _forget_unstored(services, collection, [s.path for s in saved if str(s.path) in failed])
    log.update(label=f"Ingest finished in {report.seconds:.1f} s", state="error" if failed else "complete")
    bar.progress(1.0, text="Done")
    return result


def _forget_unstored(services: Services, collection: str, paths: list[Path]) -> None:
    """Delete saved uploads that did not make it into the collection, so the uploads folder mirrors it."""
    try:
        stored = {d.path for d in services.reader(collection).documents()}
    except CollectionNotFoundError:
        stored = set()
    for path in paths:
        if str(path) not in stored:
            path.unlink(missing_ok=True)


def show_ingest_result(result: dict[str, Any]) -> None:
    if result.get("error"):
        st.error(result["error"], icon=":material/error:")
        return
    files = result["files"]
    counts = {o: sum(1 for f in files if f["outcome"] == o) for o in ("added", "updated", "unchanged", "failed")}
    summary = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    text = f"**{result['collection']}**: {summary} ({result['chunks']} chunks in {result['seconds']} s)."
    if counts["failed"]:
        st.warning(text, icon=":material/warning:")
    else:
        st.success(text, icon=":material/check_circle:")
    for f in files:
        if f["outcome"] == "failed":
            st.error(f"**{f['name']}** was not added: {f['error']}", icon=":material/error:")


def upload_section(actions: StaffActions, options: ChatOptions) -> None:
    settings = actions.services.settings
    st.subheader("Add documents")
    collection = target_collection(settings, options, actions)
    generation = st.session_state.setdefault("uploader_generation", 0)
    files = st.file_uploader(
        "Files",
        type=sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES),
        accept_multiple_files=True,
        key=f"uploader_{generation}",
        max_upload_size=max(1, int(settings.ingest.max_file_mb)),
        help="A file uploaded again under the same name replaces the earlier version.",
    )
    if st.button(
        f"Add {len(files)} file(s) to {collection}" if files else "Add files",
        type="primary",
        disabled=not files,
        key="ingest_button",
        icon=":material/upload:",
    ):
        st.session_state["ingest_result"] = ingest_uploads(actions, list(files), collection)
        st.session_state["uploader_generation"] = generation + 1  # a fresh, empty uploader
        if not st.session_state["ingest_result"].get("error"):
            st.session_state["select_collection"] = collection
        st.rerun()
    if "ingest_result" in st.session_state:
        show_ingest_result(st.session_state["ingest_result"])


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def documents_section(actions: StaffActions, collection: str | None) -> None:
    st.subheader(f"Documents in {collection}" if collection else "Documents")
    if "delete_result" in st.session_state:
        kind, text = st.session_state.pop("delete_result")
        (st.success if kind == "ok" else st.error)(text)
    if collection is None:
        st.info("No collection exists yet: add documents above.", icon=":material/info:")
        return
    try:
        documents = actions.reader(collection).documents()
    except CollectionNotFoundError as exc:
        st.info(str(exc), icon=":material/info:")
        return
    if not documents:
        st.info(f"Collection **{collection}** is empty.", icon=":material/info:")
        return
    st.caption(f"{len(documents)} documents, {sum(d.chunks for d in documents)} chunks")
    rows = [
        {
            "Document": Path(d.path).name,
            "Type": d.doc_type,
            "Chunks": d.chunks,
            "Size (KB)": round(d.size / 1024, 1),
            "Ingested": _when(d.ingested_at),
            "Modified": _when(d.mtime),
            "Location": d.path,
        }
        for d in documents
    ]
    st.dataframe(rows, hide_index=True, width="stretch", key="documents_table")

    by_path = {d.path: d for d in documents}
    names = [Path(d.path).name for d in documents]
    label = {d.path: Path(d.path).name if names.count(Path(d.path).name) == 1 else d.path for d in documents}
    chosen = st.selectbox("Document", list(by_path), format_func=label.__getitem__, key="doc_choice")
    left, right = st.columns(2)
    path = Path(chosen)
    with left:
        if path.is_file():
            st.download_button(
                "Download",
                data=partial(path.read_bytes),
                file_name=path.name,
                key="doc_download",
                on_click="ignore",
                icon=":material/download:",
                width="stretch",
            )
        else:
            st.caption("The original file is no longer at its stored location.")
    if not actions.may_edit(collection):
        return  # readers (and editors outside their collections) see the list and download, nothing more
    with right:
        if st.button("Delete from collection", key="delete_button", icon=":material/delete:", width="stretch"):
            st.session_state["confirm_delete"] = chosen
    pending = st.session_state.get("confirm_delete")
    if pending and pending in by_path:
        st.warning(f"Delete **{label[pending]}** from **{collection}**? Answers will no longer use it.")
        yes, no = st.columns(2)
        if yes.button("Yes, delete", type="primary", key="confirm_delete_yes", width="stretch"):
            st.session_state.pop("confirm_delete", None)
            delete_document(actions, collection, pending)
            st.rerun()
        if no.button("Cancel", key="confirm_delete_no", width="stretch"):
            st.session_state.pop("confirm_delete", None)
            st.rerun()


def delete_document(actions: StaffActions, collection: str, path: str) -> None:
    try:
        report = actions.delete(collection, path)  # the uploaded copy goes with the document
    except DocqaError as exc:  # not allowed, or another ingest holds the collection
        st.session_state["delete_result"] = ("error", str(exc))
        return
    if report.removed:
        st.session_state["delete_result"] = ("ok", f"Deleted {Path(path).name} from {collection}.")
    else:
        errors = "; ".join(f["error"] for f in report.failed) or "not found"
        st.session_state["delete_result"] = ("error", f"{Path(path).name} was not deleted: {errors}")


def main() -> None:
    actions = get_actions()
    options: ChatOptions = st.session_state["chat_options"]
    st.title("Documents")
    if actions.user.at_least("editor"):  # readers never see the uploader
        upload_section(actions, options)
        st.divider()
    documents_section(actions, options.collection)


if __name__ == "__main__":  # st.navigation runs page files as __main__
    main()
