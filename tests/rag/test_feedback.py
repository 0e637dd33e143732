"""The feedback store (SQLite) and its JSONL export, which the fine-tuning module reads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag.errors import DocqaError
from rag.feedback import FeedbackStore, read_jsonl
from rag.settings import Settings
from rag.types import Citation
from tests.helpers import REPO

EXPORT_KEYS = {
    "id", "created_at", "rating", "comment", "question", "answer", "citations", "collection", "model", "user"
}


def cite(n: int = 1) -> Citation:
    return Citation(
        n=n, source="/kb/manual.pdf", page=5, text="The warranty is 24 months.", score=0.81, heading="Warranty"
    )


class TestFeedbackStore:
    def test_verdict_survives_a_new_store_and_keeps_its_sources(self, settings: Settings) -> None:
        store = FeedbackStore.for_settings(settings)
        record = store.add(
            rating="up",
            question="How long is the warranty?",
            answer="24 months [1].",
            citations=[cite()],
            comment="  spot on ",
            collection="default",
            model="docqa-base",
        )
        assert store.path == settings.state_dir / "feedback.sqlite" and store.path.is_file()
        (again,) = FeedbackStore.for_settings(settings).list()  # a fresh connection reads it from disk
        assert again == record
        assert again.comment == "spot on"
        assert again.citations[0]["source"] == "/kb/manual.pdf" and again.citations[0]["page"] == 5

    def test_update_changes_one_row_and_delete_withdraws_it(self, settings: Settings) -> None:
        store = FeedbackStore.for_settings(settings)
        first = store.add(rating="up", question="q1", answer="a1")
        second = store.add(rating="down", question="q2", answer="a2")
        changed = store.update(first.id, rating="down", comment="wrong page")
        assert (changed.rating, changed.comment, changed.created_at) == ("down", "wrong page", first.created_at)
        assert [r.id for r in store.list(rating="down")] == [first.id, second.id]
        assert store.update(first.id, comment="").comment is None
        assert store.delete(second.id) and not store.delete(second.id)
        assert [r.id for r in store.list()] == [first.id]
        with pytest.raises(DocqaError, match="no feedback"):
            store.update(second.id, rating="up")

    def test_bad_rating_is_refused(self, settings: Settings) -> None:
        store = FeedbackStore.for_settings(settings)
        with pytest.raises(DocqaError, match="'up' or 'down'"):
            store.add(rating="meh", question="q", answer="a")
        assert store.list() == []

    def test_concurrent_writers_lose_nothing(self, settings: Settings) -> None:
        store = FeedbackStore.for_settings(settings)

        def write(worker: int) -> None:
            for i in range(10):
                store.add(rating="up" if i % 2 else "down", question=f"q{worker}-{i}", answer="a")

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.list()) == 40 and len({r.id for r in store.list()}) == 40

    def test_unwritable_location_is_a_clear_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "state"
        blocker.write_text("a file where the state folder should be")
        with pytest.raises(DocqaError, match="feedback database"):
            FeedbackStore(blocker / "feedback.sqlite").add(rating="up", question="q", answer="a")


class TestExport:
    def test_jsonl_has_the_fine_tuning_shape(self, settings: Settings, tmp_path: Path) -> None:
        store = FeedbackStore.for_settings(settings)
        store.add(rating="up", question="Q1 €", answer="A1 [1]", citations=[cite()], collection="c", model="m")
        store.add(rating="down", question="Q2", answer="A2")
        out = tmp_path / "export" / "feedback.jsonl"
        assert store.export_jsonl(out) == 2
        lines = out.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        assert all(set(r) == EXPORT_KEYS for r in rows)
        assert [r["rating"] for r in rows] == ["up", "down"]
        assert rows[0]["question"] == "Q1 €" and "€" in lines[0]  # UTF-8, not \\u escapes
        assert rows[0]["citations"][0] == cite().as_json()
        assert [r.question for r in read_jsonl(out)] == ["Q1 €", "Q2"]

        buffer = io.StringIO()
        assert store.export_jsonl(buffer, rating="up") == 1
        assert json.loads(buffer.getvalue())["question"] == "Q1 €"

    def test_cli_export(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        FeedbackStore(data / "state" / "feedback.sqlite").add(rating="up", question="q", answer="a")
        FeedbackStore(data / "state" / "feedback.sqlite").add(rating="down", question="q2", answer="b")
        env = dict(os.environ, DOCQA_DATA_DIR=str(data), HF_HUB_OFFLINE="1")
        out = tmp_path / "fb.jsonl"

        def docqa(*args: str) -> subprocess.CompletedProcess:
            cmd = [sys.executable, "-m", "docqa.cli.main", "feedback", *args]
            return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

        result = docqa("export", "--out", str(out), "--rating", "up")
        assert result.returncode == 0, result.stderr
        assert "wrote 1 feedback record" in result.stderr
        assert [json.loads(line)["answer"] for line in out.read_text().splitlines()] == ["a"]
        result = docqa("export", "--out", "-")
        assert [json.loads(line)["rating"] for line in result.stdout.splitlines()] == ["up", "down"]
        result = docqa("export", "--out", str(out), "--rating", "sideways")
        assert result.returncode == 2 and "up" in result.stderr
