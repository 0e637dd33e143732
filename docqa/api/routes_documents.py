"""Collections, documents and ingest jobs: upload (ingested in the background), list, delete, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from docqa.api.auth import AnyKey, StaffKey, authorize_collection, require_role
from docqa.api.errors import ApiError
from docqa.api.jobs import document_id
from docqa.api.keys import ApiKey
from docqa.api.schemas import DocumentOut, UploadResponse
from docqa.api.state import ApiState, get_state
from ingest.formats import SUPPORTED_SUFFIXES
from ingest.uploads import safe_filename
from rag.store import DocumentInfo

router = APIRouter(prefix="/v1", tags=["documents"])

REMOVE_LOCK_WAIT_S = 5.0  # a DELETE waits this long for a running ingest of the collection, then 409

# Roles of staff keys, as in the staff UI: readers list, editors also change documents, admins drop collections.
UploadKey = Annotated[ApiKey, Depends(require_role("editor", "upload documents"))]
DeleteKey = Annotated[ApiKey, Depends(require_role("editor", "delete documents"))]
JobKey = Annotated[ApiKey, Depends(require_role("editor", "follow ingest jobs"))]
DropKey = Annotated[ApiKey, Depends(require_role("admin", "delete a whole collection"))]


def _document(state: ApiState, collection: str, info: DocumentInfo) -> dict[str, Any]:
    return DocumentOut(
        id=document_id(info.path),
        name=Path(info.path).name,
        path=info.path,
        doc_type=info.doc_type,
        title=info.title,
        size=info.size,
        chunks=info.chunks,
        ingested_at=info.ingested_at,
        uploaded=state.services.uploads.is_upload(info.path, collection),
    ).model_dump()


@router.get("/collections")
def list_collections(request: Request, key: AnyKey) -> dict[str, Any]:
    """The collections this key may use, with document and chunk counts."""
    state = get_state(request)
    return {
        "collections": [
            {"name": c.name, "documents": c.documents, "chunks": c.chunks, "committed_at": c.committed_at}
            for c in state.services.collections()
            if key.can_use(c.name)
        ]
    }


@router.delete("/collections/{collection}")
def drop_collection(collection: str, request: Request, key: DropKey) -> dict[str, Any]:
    """Delete a whole collection: its index and the files uploaded into it. Admin staff keys only."""
    state = get_state(request)
    name = authorize_collection(state, key, collection)
    lock = state.jobs.collection_lock(name)
    if not lock.acquire(timeout=REMOVE_LOCK_WAIT_S):
        raise ApiError(409, f"an ingest job is writing collection '{name}'; retry when it is done", type="busy")
    try:
        state.services.drop_collection(name)
        state.services.uploads.drop(name)
    finally:
        lock.release()
    _audit(state, key, "drop_collection", name, name)
    return {"deleted": name}


def _audit(state: ApiState, key: ApiKey, action: str, collection: str, target: str, **fields: Any) -> None:
    """The same trail as the staff UI's actions: who is the key (its name, else its id)."""
    state.store.audit.record(f"key:{key.name or key.id}", action, collection=collection, target=target, **fields)


@router.post("/collections/{collection}/documents", status_code=202, response_model=UploadResponse)
def upload_documents(
    collection: str,
    request: Request,
    key: UploadKey,
    files: Annotated[list[UploadFile], File(description="Documents: pdf, docx, pptx, html, md, txt, csv, eml.")],
    replace: Annotated[
        bool,
        Form(
            description="A file named like an uploaded one replaces it (a new version) instead of being kept "
            "beside it as name-2.ext."
        ),
    ] = False,
) -> dict[str, Any]:
    """Upload documents into a collection (created if new); they are ingested in the background.

    Returns 202 with a job id; `GET /v1/jobs/{id}` reports progress. File names are sanitised and never
    used as paths. Editor or admin staff keys only.

    Example: `curl -H "Authorization: Bearer $KEY" -F files=@manual.pdf -F files=@faq.md
    http://127.0.0.1:8080/v1/collections/support/documents`
    """
    state = get_state(request)
    name = authorize_collection(state, key, collection)
    if not files:
        raise ApiError(422, "files: send at least one file (multipart field 'files')", field="files")
    for upload in files:
        suffix = Path(safe_filename(upload.filename)).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise ApiError(
                415,
                f"'{upload.filename}': unsupported file type '{suffix or '(none)'}'; "
                f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
                type="unsupported_type",
                field="files",
            )
    saved = [state.services.uploads.save(name, u.filename, u.file, replace=replace) for u in files]
    job = state.jobs.submit(name, saved)
    for s in saved:  # accepted for ingest; the job reports each file's outcome
        _audit(state, key, "upload", name, s.original, detail={"job": job.id, "stored": s.outcome})
    return {
        "job_id": job.id,
        "status_url": f"/v1/jobs/{job.id}",
        "collection": name,
        "files": [{"name": s.name, "original": s.original, "stored": s.outcome} for s in saved],
    }


@router.get("/collections/{collection}/documents")
def list_documents(collection: str, request: Request, key: StaffKey) -> dict[str, Any]:
    """The documents of a collection. Staff keys only (any role)."""
    state = get_state(request)
    name = authorize_collection(state, key, collection)
    reader = state.services.reader(name)
    return {"collection": name, "documents": [_document(state, name, d) for d in reader.documents()]}


@router.delete("/collections/{collection}/documents/{doc_id}")
def delete_document(collection: str, doc_id: str, request: Request, key: DeleteKey) -> dict[str, Any]:
    """Remove one document (by the `id` the listing shows) from the index; a file uploaded through the
    API is deleted too. Editor or admin staff keys only."""
    state = get_state(request)
    name = authorize_collection(state, key, collection)
    reader = state.services.reader(name)
    match = next((d for d in reader.documents() if document_id(d.path) == doc_id), None)
    if match is None:
        raise ApiError(404, f"no document '{doc_id}' in collection '{name}'", type="document_not_found")
    state.jobs.remove_document(name, match.path, REMOVE_LOCK_WAIT_S)
    _audit(state, key, "delete", name, Path(match.path).name)
    return {"deleted": doc_id, "name": Path(match.path).name, "collection": name}


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, key: JobKey) -> dict[str, Any]:
    """Progress of an upload's ingest: state (queued, waiting, running, done, failed), files done, chunks,
    and each file's outcome. Editor or admin staff keys only."""
    state = get_state(request)
    job = state.jobs.get(job_id)
    if job is None or not key.can_use(job.collection):
        raise ApiError(
            404,
            f"no job '{job_id}' (finished jobs are forgotten after a while, and with the default state store "
            "when the server restarts)",
            type="not_found",
        )
    return job.as_json()
