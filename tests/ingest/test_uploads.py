"""The upload store both edges use (the API's uploads, the UI's Documents page): one naming rule, files
kept inside the collection's folder, same bytes stored once, new versions kept apart or replacing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingest.uploads import UploadStore, safe_filename
from rag.errors import DocqaError
from rag.settings import Settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # from the API's rule
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\boot.ini.txt", "boot.ini.txt"),
        (".hidden.md", "hidden.md"),
        ("réport 2024 (final).PDF", "réport 2024 (final).pdf"),
        ("a;rm -rf $HOME`.md", "a_rm -rf _HOME.md"),
        ("", "upload"),
        ("x" * 300 + ".docx", "x" * 115 + ".docx"),
        # from the UI's rule (the same result, except where noted)
        ("manual.pdf", "manual.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\evil.docx", "evil.docx"),
        ("/abs/path/Report 2024 (final).docx", "Report 2024 (final).docx"),
        ("..", "upload"),
        ("a<b>|c?.txt", "a_b__c.txt"),  # the UI once made this 'a_b_c_.txt'
        ("Café München.txt", "Café München.txt"),
        ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
    ],
)
def test_upload_names_are_only_names(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


@pytest.fixture
def store(tmp_path: Path) -> UploadStore:
    return UploadStore(Settings(data_dir=tmp_path / "data"))


def save(store: UploadStore, name: str, data: bytes, *, replace: bool = False, collection: str = "hr"):
    return store.save(collection, name, io.BytesIO(data), replace=replace)


class TestUploadStore:
    def test_saved_inside_the_collection_folder(self, store: UploadStore, tmp_path: Path) -> None:
        folder = tmp_path / "data" / "state" / "uploads" / "hr"
        saved = [save(store, "../../escape.md", b"# hi"), save(store, "notes.txt", b"v1")]
        assert [s.path for s in saved] == [(folder / "escape.md").resolve(), (folder / "notes.txt").resolve()]
        assert [s.original for s in saved] == ["../../escape.md", "notes.txt"]
        assert not (tmp_path / "escape.md").exists()
        assert sorted(p.name for p in folder.iterdir()) == ["escape.md", "notes.txt"]  # no temp debris
        assert store.is_upload(saved[0].path) and store.is_upload(saved[0].path, "hr")
        assert not store.is_upload(saved[0].path, "other") and not store.is_upload(tmp_path / "other.md")

    def test_same_name_is_kept_apart_unless_replaced(self, store: UploadStore) -> None:
        first = save(store, "notes.md", b"gate 1234")
        assert (first.name, first.outcome) == ("notes.md", "new")
        same = save(store, "notes.md", b"gate 1234")
        assert (same.name, same.outcome, same.path) == ("notes.md", "same", first.path)
        other = save(store, "notes.md", b"gate 5678")
        assert (other.name, other.outcome) == ("notes-2.md", "new")
        replaced = save(store, "notes.md", b"gate 9999", replace=True)  # a new version of that document
        assert (replaced.name, replaced.outcome) == ("notes.md", "replaced")
        assert first.path.read_bytes() == b"gate 9999"
        assert sorted(p.name for p in first.path.parent.iterdir()) == ["notes-2.md", "notes.md"]

    def test_collection_name_cannot_escape(self, store: UploadStore, tmp_path: Path) -> None:
        with pytest.raises(DocqaError, match="invalid collection name"):
            save(store, "a.md", b"x", collection="../../etc")
        uploads = tmp_path / "data" / "state" / "uploads"
        assert not uploads.exists() or not any(uploads.iterdir())

    def test_delete_and_drop_touch_uploads_only(self, store: UploadStore, tmp_path: Path) -> None:
        saved = save(store, "a.md", b"x")
        elsewhere = tmp_path / "a.md"
        elsewhere.write_text("mine")
        assert not store.delete(elsewhere, "hr") and elsewhere.exists()
        assert store.delete(saved.path, "hr") and not saved.path.exists()
        save(store, "b.md", b"y")
        store.drop("hr")
        assert not store.folder("hr").exists() and elsewhere.exists()
