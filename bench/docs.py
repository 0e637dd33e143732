"""Real documents: Debian's manuals as a new user would ingest them, and what reaches the index.

The corpus is built from Debian documentation packages (``make bench-docs`` installs them): the
Debian Reference, Policy, FHS and Developer's Reference as PDFs, the Debian Administrator's Handbook
(its en-US HTML export, images and styles included) and the Debian FAQ as shipped HTML. It is
ingested into a throwaway data directory, then measured:

- noise: the share of chunks whose text or heading holds a running header or footer, a contents
  entry or web navigation (patterns below, taken from what these documents print);
- tables: tables found per document (PDFs: ruled, found by their drawn rules, and borderless, found by
  the alignment of their cells; a table continued on the next page counts once) and table chunks;
- hit@5: for the questions in ``bench/docs_questions.json``, a top-5 hit from the right document
  whose text or heading holds the expected words.

    python -m bench.docs
"""

from __future__ import annotations

import gzip
import json
import re
import resource
import shutil
import tempfile
from pathlib import Path

from bench.common import Timer, write_results
from docqa.services import build
from rag.settings import Settings

QUESTIONS = Path(__file__).resolve().parent / "docs_questions.json"
PDFS = {
    "debian-reference.pdf": "/usr/share/debian-reference/debian-reference.en.pdf",
    "debian-policy.pdf": "/usr/share/doc/debian-policy/policy.pdf.gz",
    "fhs.pdf": "/usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz",
    "developers-reference.pdf": "/usr/share/developers-reference/developers-reference.pdf",
}
HANDBOOK = Path("/usr/share/doc/debian-handbook/html/en-US")
FAQ = Path("/usr/share/doc/debian/FAQ")
NOISE = {
    "running header/footer": re.compile(
        r"Debian Reference [ivxlc\d]+ / \d+|Debian Reference [ivxlc]+$|Debian Policy Manual, Release"
        r"|Developer.s Reference, Release|^\d+ Chapter \d+\.|^\d+(?:\.\d+)+\. .{3,80} \d+$",
        re.M,
    ),
    "contents": re.compile(r"(?:\. ){6,}|^(?:Table of )?Contents$", re.M | re.I),
    "web navigation": re.compile(r"Download the ebook|^Prev$|^Next$|\bPrev\b.{0,80}\bNext\b", re.M),
}


def build_corpus(target: Path) -> None:
    target.mkdir(parents=True)
    for name, source in PDFS.items():
        src = Path(source)
        if not src.exists():
            raise SystemExit(f"{src} is missing: run `make bench-docs` (it installs the Debian doc packages)")
        if src.suffix == ".gz":
            with gzip.open(src) as fin, open(target / name, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            shutil.copy(src, target / name)
    shutil.copytree(HANDBOOK, target / "handbook")  # the export as shipped: pages, images, styles
    faq = target / "faq"
    faq.mkdir()
    for page in FAQ.glob("*.en.html"):
        shutil.copy(page, faq / page.name)
    for extra in ("debian.css", "images"):
        if (FAQ / extra).is_dir():
            shutil.copytree(FAQ / extra, faq / extra)
        elif (FAQ / extra).exists():
            shutil.copy(FAQ / extra, faq / extra)


def noise_of(text: str, heading: str | None) -> list[str]:
    both = f"{heading or ''}\n{text}"
    return [kind for kind, pattern in NOISE.items() if pattern.search(both)]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="docqa-bench-docs-") as tmp:
        corpus = Path(tmp) / "corpus"
        build_corpus(corpus)
        settings = Settings(data_dir=Path(tmp) / "data")
        services = build(settings)
        with Timer() as t:
            report = services.ingestor.ingest([corpus], "docs")
        reader = services.reader("docs")
        chunks = reader.chunks(reader.chunk_ids().tolist()).values()
        # One row per chunk and path it is stored under (identical files share their chunks).
        rows = [(c.text, c.heading, c.element_type, path) for c in chunks for path in c.sources]
        per_doc: dict[str, dict] = {}
        noisy_examples: list[str] = []
        for text, heading, kind, path in rows:
            group = Path(path).relative_to(corpus).parts[0]
            doc = per_doc.setdefault(group, {"document": group, "chunks": 0, "table_chunks": 0, "noisy": 0})
            doc["chunks"] += 1
            doc["table_chunks"] += kind == "Table"
            found = noise_of(text, heading)
            if found:
                doc["noisy"] += 1
                if len(noisy_examples) < 12:
                    noisy_examples.append(f"{group}: {found} {(heading or '')[:60]!r} {text[:100]!r}")
        figures = {Path(d["path"]).relative_to(corpus).parts[0]: d for d in report.documents}
        for group, doc in per_doc.items():
            doc["noise_share"] = round(doc["noisy"] / doc["chunks"], 4)
            if group in figures:
                f = figures[group]
                doc.update(
                    tables=f.get("tables"),
                    tables_ruled=f.get("tables_ruled"),
                    tables_borderless=f.get("tables_borderless"),
                    pages=f.get("pages"),
                    ocr_pages=f.get("ocr_pages"),
                    header_footer_lines_dropped=f.get("running_lines_dropped"),
                    contents_pages=f.get("contents_pages"),
                )
        questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
        hits = []
        for q in questions:
            result = services.retriever.search(reader, q["question"], top_k=5)
            rank = next(
                (
                    i
                    for i, h in enumerate(result.hits, 1)
                    if q["source"] in h.chunk.source
                    and all(w.lower() in f"{h.chunk.heading or ''}\n{h.chunk.text}".lower() for w in q["needles"])
                ),
                None,
            )
            hits.append({"question": q["question"], "rank": rank})
        total = sum(d["chunks"] for d in per_doc.values())
        noisy = sum(d["noisy"] for d in per_doc.values())
        summary = {
            "chunks": total,
            "noise_share": round(noisy / total, 4),
            "pdf_tables": sum(d.get("tables") or 0 for g, d in per_doc.items() if g.endswith(".pdf")),
            "pdf_tables_ruled": sum(d.get("tables_ruled") or 0 for d in per_doc.values()),
            "pdf_tables_borderless": sum(d.get("tables_borderless") or 0 for d in per_doc.values()),
            "pdf_table_chunks": sum(d["table_chunks"] for g, d in per_doc.items() if g.endswith(".pdf")),
            "html_table_chunks": sum(d["table_chunks"] for g, d in per_doc.items() if not g.endswith(".pdf")),
            "hit@5": round(sum(h["rank"] is not None for h in hits) / len(hits), 3),
            "questions": len(hits),
            "ingest_s": round(t.s, 1),
            # Linux reports kilobytes: the whole bench process at its peak (the ingest, the embedder loaded).
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "documents": len(report.added),
            "skipped_non_documents": len(report.skipped),
            "failed": len(report.failed),
        }
        write_results(
            "docs",
            [summary],
            command="make bench-docs",
            notes=[
                "noise: share of chunks whose text or heading matches a running header/footer, contents or "
                "web-navigation pattern (bench/docs.py NOISE)",
                *[f"noisy chunk: {e}" for e in noisy_examples],
                *[f"missed: {h['question']}" for h in hits if h["rank"] is None],
            ],
            tables={"per document": sorted(per_doc.values(), key=lambda d: d["document"]), "questions": hits},
        )


if __name__ == "__main__":
    main()
