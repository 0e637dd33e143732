"""The `docqa` command line as a user runs it: JSON shapes, exit codes, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO


def docqa(*args: str, data_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, DOCQA_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", *args], cwd=REPO, env=full_env, capture_output=True, text=True,
        timeout=300,
    )


def test_ingest_search_collections_remove_json(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "guide.md").write_text("# Setup\n\nConnect the base station to a wall socket before first use.\n")
    (kb / "broken.txt").write_bytes(b"")
    data = tmp_path / "data"

    result = docqa("ingest", str(kb), "--collection", "kb", "--json", data_dir=data)
    assert result.returncode == 1, result.stderr  # one file failed
    report = json.loads(result.stdout)
    assert set(report) >= {"added", "updated", "unchanged", "removed", "chunks", "failed"}
    assert [Path(p).name for p in report["added"]] == ["guide.md"]
    assert report["failed"][0]["path"].endswith("broken.txt") and report["failed"][0]["error"]

    # A run that changes nothing writes no chunk, and says how many the collection holds.
    (kb / "broken.txt").unlink()
    report = json.loads(docqa("ingest", str(kb), "--collection", "kb", "--json", data_dir=data).stdout)
    assert report["chunks"] == 0 and report["total_chunks"] >= 1 and report["total_documents"] == 1

    result = docqa("search", "where to plug the base station", "-c", "kb", "-k", "1", "--json", data_dir=data)
    assert result.returncode == 0, result.stderr
    (hit,) = json.loads(result.stdout)
    assert set(hit) == {"source", "page", "heading", "score", "text"}
    assert hit["source"].endswith("guide.md") and hit["page"] is None and hit["heading"] == "Setup"

    result = docqa("collections", "--json", data_dir=data)
    (info,) = json.loads(result.stdout)
    assert (info["name"], info["documents"]) == ("kb", 1)

    result = docqa("remove", str(kb / "guide.md"), "-c", "kb", "--json", data_dir=data)
    assert result.returncode == 0 and json.loads(result.stdout)["removed"]
    assert json.loads(result.stdout)["total_chunks"] == 0


def test_search_shows_neighbouring_chunks_of_a_page_as_one_passage(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    sentences = [f"The descaling step {i} of the base station takes about {i + 2} minutes." for i in range(60)]
    (kb / "descaling.md").write_text("# Descaling\n\n" + " ".join(sentences) + "\n")
    data = tmp_path / "data"
    report = json.loads(docqa("ingest", str(kb), "--json", data_dir=data).stdout)
    assert report["total_chunks"] >= 3  # one section, several chunks
    result = docqa("search", "how long does descaling the base station take", "-k", "3", "--json", data_dir=data)
    hits = json.loads(result.stdout)
    # Without the merge the three best chunks of the one document came back as three hits.
    assert len(hits) < 3 and any("step 0 " in h["text"] or "step 59 " in h["text"] for h in hits), hits


def test_unknown_collection_is_one_clear_line(tmp_path: Path) -> None:
    result = docqa("search", "anything", "-c", "nope", data_dir=tmp_path / "data")
    assert result.returncode == 1
    assert "collection 'nope' does not exist" in result.stderr and "Traceback" not in result.stderr


def test_ask_with_model_server_down_says_how_to_start_it(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("# A\n\nThe answer is forty-two.\n")
    data = tmp_path / "data"
    assert docqa("ingest", str(kb), "--json", data_dir=data).returncode == 0
    result = docqa("ask", "what is the answer?", data_dir=data, env={"DOCQA_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "docqa model serve" in result.stderr and "127.0.0.1:9" in result.stderr


def test_config_reads_environment_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "docqa.toml"
    toml.write_text('[retrieval]\ntop_k = 9\n[api]\nport = 9999\n')
    result = docqa(
        "config", "--json", data_dir=tmp_path, env={"DOCQA_CONFIG": str(toml), "DOCQA_API_PORT": "7070"}
    )
    cfg = json.loads(result.stdout)
    assert cfg["retrieval"]["top_k"] == 9  # from the file
    assert cfg["api"]["port"] == 7070  # the environment wins over the file
    assert cfg["data_dir"] == str(tmp_path)


def test_help_reads_as_sentences_and_shows_no_type_for_flags(tmp_path: Path) -> None:
    """Docstrings are wrapped in the source; on screen a sentence continues on one line, and a flag
    (``--json``, ``--help``) has no ``<bool>`` type beside it."""
    wide = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    root = docqa("--help", data_dir=tmp_path, env=wide)
    assert root.returncode == 0, root.stderr
    # search's summary spans two source lines.
    assert "with score, source and page" in root.stdout
    ingest = docqa("ingest", "--help", data_dir=tmp_path, env=wide)
    assert "a killed run leaves the previous index intact" in ingest.stdout
    assert "\n   docqa ingest data/samples" in ingest.stdout  # examples keep their lines and indent
    assert "<bool>" not in ingest.stdout and "<bool>" not in root.stdout
    json_row = next(line for line in ingest.stdout.splitlines() if "--json " in line and "│" in line)
    assert "Print a JSON report" in json_row and "TEXT" not in json_row
    assert any("--collection" in line and "TEXT" in line for line in ingest.stdout.splitlines())
