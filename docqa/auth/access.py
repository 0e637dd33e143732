"""Roles and the checked actions the staff UI calls: the UI hides what a role may not do, and every action
here refuses it again (a hidden button is not a permission), writing the attempt to the audit trail.

| role   | ask, read sources, give feedback | upload and delete documents | accounts, every collection |
|--------|----------------------------------|-----------------------------|----------------------------|
| reader | the collections granted          | no                          | no                         |
| editor | the collections granted          | the collections granted     | no                         |
| admin  | every collection                 | every collection            | yes                        |

An account granted no collection in particular may use every one (as a staff API key may).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from docqa.auth.errors import PermissionDeniedError
from docqa.auth.users import User
from docqa.services import Services
from docqa.state.protocol import StateStore
from rag.errors import DocqaError
from rag.types import Answer, Citation, Question

if TYPE_CHECKING:
    from docqa.auth.audit import AuditEvent
    from ingest.pipeline import IngestReport
    from ingest.uploads import SavedUpload
    from rag.feedback import FeedbackRecord
    from rag.store import CollectionInfo, CollectionReader

# auth.method = "none" (allowed on loopback only): the one person at this machine, who may do everything.
NOBODY = User(name="-", role="admin", collections=(), created_at=0.0)


class StaffActions:
    """One signed-in user's view of the services: what they may see, and each action checked and audited."""

    def __init__(self, services: Services, state: StateStore, user: User) -> None:
        self.services = services
        self.state = state
        self.user = user
        self.log_questions = services.settings.audit.log_questions

    # -- checks -----------------------------------------------------------------------------------------
    def may_read(self, collection: str) -> bool:
        return self.user.can_read(collection)

    def may_edit(self, collection: str) -> bool:
        return self.user.can_edit(collection)

    def _require(self, allowed: bool, action: str, collection: str | None, target: str | None = None) -> None:
        if allowed:
            return
        self._audit("denied", outcome="refused", collection=collection, target=target, detail={"tried": action})
        where = f" in collection '{collection}'" if collection else ""
        raise PermissionDeniedError(
            f"{self.user.name} ({self.user.role}) may not {action}{where}; an admin can grant it with "
            "`docqa users set-role`"
        )

    def _audit(self, action: str, **fields: Any) -> None:
        self.state.audit.record(self.user.name, action, **fields)

    # -- reading ----------------------------------------------------------------------------------------
    def collections(self) -> list[CollectionInfo]:
        """The collections this user may ask (only those are offered)."""
        return [c for c in self.services.collections() if self.may_read(c.name)]

    def reader(self, collection: str) -> CollectionReader:
        self._require(self.may_read(collection), "read documents", collection)
        return self.services.reader(collection)

    def stream(self, question: Question) -> Iterator[dict[str, Any]]:
        """The pipeline's events for a question in a collection this user may ask; the question is audited
        (its text only when audit.log_questions is on)."""
        self._require(self.may_read(question.collection), "ask", question.collection)
        detail = {"question": question.text} if self.log_questions else {}
        self._audit("ask", collection=question.collection, detail=detail)
        return self.services.pipeline.stream(question)

    def passages_only(self, question: Question) -> Answer:
        self._require(self.may_read(question.collection), "ask", question.collection)
        return self.services.pipeline.passages_only(question)

    # -- feedback ---------------------------------------------------------------------------------------
    def add_feedback(
        self,
        *,
        rating: str,
        question: str,
        answer: str,
        citations: Sequence[Citation | dict[str, Any]] = (),
        comment: str | None = None,
        collection: str | None = None,
        model: str | None = None,
    ) -> FeedbackRecord:
        """A verdict carrying the user's name."""
        if collection is not None:
            self._require(self.may_read(collection), "give feedback", collection)
        record = self.state.feedback.add(
            rating=rating,
            question=question,
            answer=answer,
            citations=citations,
            comment=comment,
            collection=collection,
            model=model,
            user=self.user.name if self.user is not NOBODY else None,
        )
        detail: dict[str, Any] = {"rating": rating, **({"question": question} if self.log_questions else {})}
        self._audit("feedback", collection=collection, target=record.id, detail=detail)
        return record

    def update_feedback(self, feedback_id: str, *, rating: str | None = None, comment: str | None = None) -> None:
        """Change one's own verdict (in a collection one may still read)."""
        current = self._own_feedback(feedback_id)
        self.state.feedback.update(feedback_id, rating=rating, comment=comment)
        changed = {k: v for k, v in (("rating", rating), ("comment", comment is not None)) if v}
        self._audit("feedback", collection=current.collection, target=feedback_id, detail={"changed": changed})

    def withdraw_feedback(self, feedback_id: str, collection: str | None = None) -> None:
        current = self._own_feedback(feedback_id)
        if self.state.feedback.delete(feedback_id):
            self._audit("feedback", collection=current.collection, target=feedback_id, detail={"withdrawn": True})

    def _own_feedback(self, feedback_id: str) -> FeedbackRecord:
        current = self.state.feedback.get(feedback_id)
        if current is None:
            raise DocqaError(f"no feedback with id {feedback_id!r}")
        mine = current.user is None or current.user == self.user.name or self.user.role == "admin"
        self._require(mine, "change another person's feedback", current.collection, feedback_id)
        if current.collection is not None:
            self._require(self.may_read(current.collection), "give feedback", current.collection, feedback_id)
        return current

    # -- administration ---------------------------------------------------------------------------------
    def accounts(self) -> list[User]:
        """Every account (admins only)."""
        self._require(self.user.role == "admin", "list accounts", None)
        return self.state.users.list()

    def audit_events(self, last: int = 200) -> list[AuditEvent]:
        """The newest events of the audit trail, newest first (admins only)."""
        self._require(self.user.role == "admin", "read the audit trail", None)
        return self.state.audit.list()[-last:][::-1]

    # -- documents --------------------------------------------------------------------------------------
    def save_upload(self, collection: str, name: str, stream: IO[bytes]) -> SavedUpload:
        """Keep an uploaded file for ingest; a file of the same name is replaced."""
        self._require(self.may_edit(collection), "upload documents", collection, name)
        return self.services.uploads.save(collection, name, stream, replace=True)

    def ingest(
        self,
        saved: Sequence[SavedUpload],
        collection: str,
        *,
        progress: Any = None,
        on_file: Callable[[str, str], None] | None = None,
    ) -> IngestReport:
        """Ingest saved uploads into the collection; one audit event per file with its outcome."""
        names = [s.original for s in saved]
        self._require(self.may_edit(collection), "upload documents", collection, ", ".join(names))
        try:
            report = self.services.ingestor.ingest(
                [s.path for s in saved], collection, prune=False, progress=progress, on_file=on_file
            )
        except Exception as exc:
            for name in names:
                self._audit("upload", outcome="failed", collection=collection, target=name, detail={"error": str(exc)})
            raise
        outcomes = {p: o for o in ("added", "updated", "unchanged") for p in getattr(report, o)}
        errors = {f["path"]: f["error"] for f in report.failed}
        for s in saved:
            key = str(s.path)
            outcome = outcomes.get(key, "failed")
            detail = {"result": outcome, **({"error": errors[key]} if key in errors else {})}
            self._audit(
                "upload",
                outcome="ok" if outcome != "failed" else "failed",
                collection=collection,
                target=s.original,
                detail=detail,
            )
        return report

    def delete(self, collection: str, path: str) -> IngestReport:
        """Remove a document from the collection (and its uploaded copy)."""
        name = Path(path).name
        self._require(self.may_edit(collection), "delete documents", collection, name)
        try:
            report = self.services.ingestor.remove([Path(path)], collection)
        except Exception as exc:
            self._audit("delete", outcome="failed", collection=collection, target=name, detail={"error": str(exc)})
            raise
        if report.removed:
            self.services.uploads.delete(path, collection)
        self._audit("delete", outcome="ok" if report.removed else "failed", collection=collection, target=name)
        return report
