"""Real manuals nobody tuned for: the corpus behind ``bench/manuals/questions.json``.

Three documentation sets written by other projects, as Debian ships them (``make manuals-corpus``
installs the packages): gnuplot's reference manual as a PDF (311 pages, with borderless tables of format
specifiers and operators), five pages of SQLite's HTML documentation, and five pages of BorgBackup's
Sphinx HTML documentation. Debian's own manuals (which tuned the parsers), R's and PostgreSQL's (held out
for independent checks) are deliberately not used.

Each file is copied as shipped and checked against its pinned sha256, so a question's page and answer
keep pointing at the text they were written from; a missing or changed file names the package to install.

    python -m bench.manuals CORPUS_DIR      # then: docqa eval answers --questions ... --docs CORPUS_DIR
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

QUESTIONS = Path(__file__).resolve().parent / "manuals" / "questions.json"


@dataclass(frozen=True)
class Source:
    doc_set: str
    package: str
    version: str
    path: str  # where the package installs it
    target: str  # path relative to the corpus root (the questions' ``file``)
    sha256: str


GNUPLOT = ("gnuplot", "gnuplot-doc", "5.4.4+dfsg1-2")
SQLITE = ("sqlite", "sqlite3-doc", "3.40.1-2+deb12u2")
BORG = ("borg", "borgbackup-doc", "1.2.4-1")
SOURCES = (
    Source(*GNUPLOT, "/usr/share/doc/gnuplot/gnuplot.pdf", "gnuplot/gnuplot.pdf",
           "df68dd0613f043141512fc4436d17aaf96727d5a758d85233915ac5056a97206"),
    Source(*SQLITE, "/usr/share/doc/sqlite3/lang_datefunc.html", "sqlite/lang_datefunc.html",
           "6b7876e4ac368179ba65d1a78ee1cc56ac4072a0100596fc3abb4acd3107f58f"),
    Source(*SQLITE, "/usr/share/doc/sqlite3/limits.html", "sqlite/limits.html",
           "c8ce36be3280ea10a22db68a99643f5b7eaa0f7064685f301e04b734f4b20cac"),
    Source(*SQLITE, "/usr/share/doc/sqlite3/datatype3.html", "sqlite/datatype3.html",
           "dee8d75f5f6a1b762f317f31db2345b653d8ed918f6a4b8b17e3c9a404eb7436"),
    Source(*SQLITE, "/usr/share/doc/sqlite3/faq.html", "sqlite/faq.html",
           "f521c7145ea05014a91fb8b548c6b8f94168621b72d5158b3ca14667d248a5a7"),
    Source(*SQLITE, "/usr/share/doc/sqlite3/whentouse.html", "sqlite/whentouse.html",
           "4f780133368c5fed82ec3340854f5e1c74e11d4d7388780842f057a6712e69e4"),
    Source(*BORG, "/usr/share/doc/borgbackup/html/quickstart.html", "borg/quickstart.html",
           "66c3c7d093114d947715f6210f9dca1ac437fbb6201729e65ef0dc645658d083"),
    Source(*BORG, "/usr/share/doc/borgbackup/html/usage/create.html", "borg/usage/create.html",
           "9085d58216d3c117d92640d7fcd9a9093aa0e630fb3d9896f4e6835136e56b63"),
    Source(*BORG, "/usr/share/doc/borgbackup/html/usage/prune.html", "borg/usage/prune.html",
           "3ba33e05a3e846e9f6b546fcf845c49709947a3bef3b7b6f9b1dce3ccc9176c7"),
    Source(*BORG, "/usr/share/doc/borgbackup/html/usage/init.html", "borg/usage/init.html",
           "670b5fdc2c3d0657add7486fa3cda288b1a7e6559e9b8f493486aefc10eb22eb"),
    Source(*BORG, "/usr/share/doc/borgbackup/html/usage/general.html", "borg/usage/general.html",
           "4bb03ee96c37e1b4ee373b1ec6cdadb6af4e6024a4ce25fe671cafefce8e3d1c"),
)
PACKAGES = tuple(dict.fromkeys(s.package for s in SOURCES))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance() -> list[dict[str, str]]:
    """What the question file records about its corpus (one row per file)."""
    return [
        {"doc_set": s.doc_set, "package": s.package, "version": s.version, "installed_as": s.path,
         "file": s.target, "sha256": s.sha256}
        for s in SOURCES
    ]


def build_corpus(target: Path) -> list[Path]:
    """Copy the pinned files into ``target`` (created; must be empty or absent); every file is checked
    first, so a wrong package version leaves nothing half-built."""
    problems = []
    for s in SOURCES:
        src = Path(s.path)
        if not src.exists():
            problems.append(f"{src} is missing: install {s.package} {s.version} (`make manuals-corpus`)")
        elif (found := sha256_of(src)) != s.sha256:
            problems.append(
                f"{src} has sha256 {found[:12]}..., not the pinned {s.sha256[:12]}...: the questions were written "
                f"against {s.package} {s.version}; install that version"
            )
    if problems:
        raise SystemExit("\n".join(problems))
    if target.exists() and any(target.iterdir()):
        raise SystemExit(f"{target} is not empty: give a new directory")
    copied = []
    for s in SOURCES:
        dest = target / s.target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s.path, dest)
        copied.append(dest)
    return copied


SPLIT_SEED = "docqa-manuals-1"
FORMAT = (
    "One object per question. id; doc_set; question (as a user would ask it); answer (the reference); "
    "must_contain: strings a right answer must contain, every one of them, each matched case-insensitively "
    "on word boundaries after normalising quotes, dashes and spaces, and each may offer alternatives "
    "separated by ' | ' (empty for unanswerable questions); file: the path relative to the corpus root where "
    "the answer is (null when unanswerable); page: the 1-based PDF page (null for HTML); kind: "
    "prose|table|list|code|two_part|qualifier|yes_no|unanswerable; answerable: false when the documents do "
    "not answer the question (checked by searching them); split: dev|locked (bench.manuals.assign_splits: "
    "within each doc_set x kind, ids ordered by sha256(seed + id), alternating dev, locked from a hashed start)."
)


def assign_splits(questions: list[dict], seed: str = SPLIT_SEED) -> None:
    """Deterministic, stratified halves: within each (doc_set, kind) group the ids are ordered by a seeded
    hash and alternate dev/locked, so both splits get the same mix whatever order the file lists them in."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for q in questions:
        groups.setdefault((q["doc_set"], q["kind"]), []).append(q)
    for (doc_set, kind), group in sorted(groups.items()):
        group.sort(key=lambda q: hashlib.sha256(f"{seed}:{q['id']}".encode()).hexdigest())
        # Which half an odd group's extra question joins is hashed too, so neither half gets them all.
        first = hashlib.sha256(f"{seed}:{doc_set}:{kind}".encode()).digest()[0] % 2
        for i, q in enumerate(group):
            q["split"] = "dev" if (i + first) % 2 == 0 else "locked"


def summarise_partial(out_dir: Path, split: str, collection_meta: Path) -> Path:
    """results.json and summary.md from the rows.partial.jsonl of an ``eval answers --questions`` run that
    was stopped before the end (marked partial: how many of the split's questions were answered)."""
    from rag.evaluation.keyed import aggregate
    from rag.evaluation.question_set import load_question_set, write_results
    from rag.settings import load_settings

    rows = [json.loads(line) for line in (out_dir / "rows.partial.jsonl").read_text().splitlines() if line]
    _, asked = load_question_set(QUESTIONS, split)
    meta = json.loads(collection_meta.read_text())
    settings = load_settings()
    result = {
        "kind": "answers", "partial": True, "answered": len(rows), "split_questions": len(asked),
        "model": settings.answer.adapter or settings.llm_model_name, "mode": settings.answer.mode,
        "documents": meta["documents"], "chunks": meta["chunks"], "ingest_s": None, "temperature": 0.0,
        **aggregate(rows), "rows": rows, "questions_file": str(QUESTIONS), "split": split,
    }
    title = f"questions.json · split {split} (PARTIAL: {len(rows)} of {len(asked)} questions answered)"
    write_results(result, out_dir, title)
    return out_dir / "summary.md"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 4 and args[0] == "partial":
        print(summarise_partial(Path(args[1]), args[2], Path(args[3])))
        return
    if len(args) != 1:
        raise SystemExit(
            "usage: python -m bench.manuals CORPUS_DIR  |  python -m bench.manuals partial OUT_DIR SPLIT META_JSON"
        )
    copied = build_corpus(Path(args[0]))
    print(f"{len(copied)} files from {', '.join(PACKAGES)} in {args[0]}")


if __name__ == "__main__":
    main()
