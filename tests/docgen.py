"""Build real test documents of every supported format (and broken ones) in a directory.

Every maker takes the target ``path`` first, writes the file, and returns the path. Content is given
as simple blocks so tests can state exactly what a parser should find:

    Block = (style, text), style one of "title", "h1", "h2", "p", "li", "table"
    a "table" block's text has rows separated by "\\n" and cells by "|"; the first row is the header.

    make_pdf(tmp_path / "m.pdf", [[("h1", "Setup"), ("p", "Plug it in.")], [("h1", "Care"), ...]])
    make_docx(tmp_path / "p.docx", [("h1", "Returns"), ("p", "Within 30 days.")])
    make_pptx(tmp_path / "s.pptx", [("Release 2.1", ["No-go zones", "Faster maps"])])

No network, no model: reportlab, python-docx, python-pptx and the standard library only.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from pathlib import Path

Block = tuple[str, str]

_DOCX_STYLES = {"title": "Title", "h1": "Heading 1", "h2": "Heading 2", "li": "List Bullet"}


def _rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().split("\n")]


def _prepare(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------------------------------ good files


def make_pdf(path: Path, pages: list[list[Block]], *, title: str | None = None) -> Path:
    """A text PDF: one list of blocks per page (each page's blocks must fit on one A4 page).

    Headings use reportlab's Title/Heading styles (larger, bold), body text is 10 pt Helvetica.
    ``title`` sets the PDF metadata title.
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import ListFlowable, ListItem, PageBreak, Paragraph, SimpleDocTemplate, Table

    styles = getSampleStyleSheet()
    names = {"title": "Title", "h1": "Heading1", "h2": "Heading2", "p": "BodyText"}
    story: list = []
    for number, blocks in enumerate(pages):
        if number:
            story.append(PageBreak())
        bullets: list = []
        for style, text in [*blocks, ("end", "")]:
            if style != "li" and bullets:
                story.append(ListFlowable(bullets, bulletType="bullet"))
                bullets = []
            if style == "li":
                bullets.append(ListItem(Paragraph(escape(text), styles["BodyText"])))
            elif style == "table":
                table = Table(_rows(text))
                table.setStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey)])
                story.append(table)
            elif style in names:
                story.append(Paragraph(escape(text), styles[names[style]]))
    path = _prepare(path)
    SimpleDocTemplate(str(path), pagesize=A4, title=title or "", author="docqa tests").build(story)
    return path


Line = str | tuple[str, float, str]


def make_pdf_lines(path: Path, pages: list[list[Line]], *, size: float = 11, leading: float = 14) -> Path:
    """A PDF drawn line by line, for typography tests: no styles unless you give them.

    Each line is a string (Helvetica at ``size``), or ``(font, size, text)`` such as
    ``("Helvetica-Bold", 11, "Battery Care")``; an empty string leaves a blank line (a paragraph gap).
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = _prepare(path)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for lines in pages:
        y = A4[1] - 72
        for line in lines:
            font, line_size, text = line if isinstance(line, tuple) else ("Helvetica", size, line)
            if text:
                pdf.setFont(font, line_size)
                pdf.drawString(72, y, text)
            y -= leading
        pdf.showPage()
    pdf.save()
    return path


Placed = tuple[float, float, str]  # x from the left edge, y from the top edge (points), text


def make_pdf_placed(path: Path, pages: list[list[Placed]], *, font: str = "Helvetica", size: float = 10) -> Path:
    """A PDF with each string drawn where it is told, for layout tests: borderless tables (cells at
    column positions, no rules), two-column prose, lists. ``(x, y, text)`` per string; a text starting
    with "@Courier " is set in Courier (code)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = _prepare(path)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for placed in pages:
        for x, y, text in placed:
            face = font
            if text.startswith("@Courier "):
                face, text = "Courier", text.removeprefix("@Courier ")
            pdf.setFont(face, size)
            pdf.drawString(x, A4[1] - y, text)
        pdf.showPage()
    pdf.save()
    return path


def table_rows(x: list[float], top: float, rows: list[list[str]], pitch: float = 16) -> list[Placed]:
    """A borderless table for ``make_pdf_placed``: row r's cell c at (x[c], top + r * pitch)."""
    return [(x[c], top + r * pitch, cell) for r, row in enumerate(rows) for c, cell in enumerate(row) if cell]


MANUAL_TOPICS = ["Installing", "Cleaning", "Batteries", "Scripting"]


def make_manual_pdf(path: Path) -> Path:
    """A small printed manual as real ones come: a contents page (dot leaders), then one chapter a page
    with a running header, a footer carrying the printed page number and the chapter title, a ruled
    table (chapter 2, with a wrapped cell), a Courier code block with indentation (chapter 4), a
    footnote marker (chapter 1), and /PageLabels: the contents page is "i", the chapters 1-4.
    """
    from pypdf import PdfWriter
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    height = A4[1]
    tmp = _prepare(path).with_suffix(".raw.pdf")
    pdf = canvas.Canvas(str(tmp), pagesize=A4)
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(72, height - 90, "Contents")
    pdf.setFont("Helvetica", 11)
    for n, topic in enumerate(MANUAL_TOPICS, start=1):
        for sub in (1, 2):
            y = height - 120 - ((n - 1) * 2 + sub - 1) * 16
            pdf.drawString(72, y, f"{n}.{sub} {topic} part {sub} " + ". " * 30 + f" {n}")
    pdf.showPage()
    for n, topic in enumerate(MANUAL_TOPICS, start=1):
        pdf.setFont("Helvetica", 9)
        pdf.drawString(72, height - 40, "Kestrel Widget Manual, Release 2.1")
        footer = f"{n} Chapter {n}. {topic}" if n % 2 == 0 else f"{n}. {topic} {n}"
        pdf.drawString(72, 40, footer)
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(72, height - 90, f"{n}. {topic}")
        pdf.setFont("Helvetica", 11)
        y = height - 120
        for line in (f"This chapter explains {topic.lower()} the widget in detail for every owner.",
                     f"Read the {topic.lower()} steps before you start, and keep this manual at hand."):
            pdf.drawString(72, y, line)
            y -= 14
        if n == 1:
            pdf.drawString(72, y, "The widget needs a grounded socket")
            x = 72 + pdf.stringWidth("The widget needs a grounded socket", "Helvetica", 11)
            pdf.setFont("Helvetica", 7)
            pdf.drawString(x, y + 4, "1")
            pdf.setFont("Helvetica", 11)
            pdf.drawString(x + 5, y, " near the sink.")
        if n == 2:
            _ruled_table(pdf, 72, y - 30, [["Part", "Interval", "Note"], ["Filter", "3 months", "Rinse in"],
                                           ["Brush", "6 months", "Cut hair off"], ["Tank", "weekly", "Dry it"]],
                         wrap={(1, 2): "cold water"})
        if n == 4:
            pdf.setFont("Courier", 10)
            for i, code in enumerate(["def clean(widget):", "    for brush in widget.brushes:",
                                      "        brush.spin(rpm=1200)", "    return widget"]):
                indent = len(code) - len(code.lstrip())
                pdf.drawString(72 + indent * 6, y - 20 - i * 12, code.lstrip())
        pdf.showPage()
    pdf.save()
    writer = PdfWriter(clone_from=str(tmp))
    writer.set_page_label(0, 0, style="/r")
    writer.set_page_label(1, len(MANUAL_TOPICS), style="/D", start=1)
    with open(path, "wb") as fh:
        writer.write(fh)
    tmp.unlink()
    return path


def _ruled_table(pdf, left: float, top: float, rows: list[list[str]], wrap: dict) -> None:
    """Rows drawn cell by cell inside grid lines; ``wrap`` gives second lines of cells (row, col)."""
    widths, row_h = [90, 90, 120], 30
    xs = [left + sum(widths[:i]) for i in range(len(widths) + 1)]
    ys = [top - i * row_h for i in range(len(rows) + 1)]
    for y in ys:
        pdf.line(xs[0], y, xs[-1], y)
    for x in xs:
        pdf.line(x, ys[0], x, ys[-1])
    pdf.setFont("Helvetica", 10)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            pdf.drawString(xs[c] + 4, ys[r] - 12, cell)
            if (r, c) in wrap:
                pdf.drawString(xs[c] + 4, ys[r] - 24, wrap[(r, c)])


def make_docx(path: Path, blocks: list[Block]) -> Path:
    """A Word document: headings use the built-in Heading styles, "li" the List Bullet style."""
    import docx

    document = docx.Document()
    for style, text in blocks:
        if style == "table":
            rows = _rows(text)
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        elif style == "p":
            document.add_paragraph(text)
        else:
            document.add_paragraph(text, style=_DOCX_STYLES[style])
    path = _prepare(path)
    document.save(str(path))
    return path


def make_pptx(
    path: Path,
    slides: list[tuple[str, list[str]]],
    *,
    notes: dict[int, str] | None = None,
    tables: dict[int, str] | None = None,
) -> Path:
    """A presentation: one (title, bullets) per slide; ``notes`` and ``tables`` are keyed by slide number."""
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]  # "Title and Content"
    for number, (title, bullets) in enumerate(slides, start=1):
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        for i, bullet in enumerate(bullets):
            paragraph = body.paragraphs[0] if i == 0 else body.add_paragraph()
            paragraph.text = bullet
        if tables and number in tables:
            rows = _rows(tables[number])
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), Inches(1), Inches(5), Inches(8), Inches(1.5)
            )
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    shape.table.cell(r, c).text = cell
        if notes and number in notes:
            slide.notes_slide.notes_text_frame.text = notes[number]
    path = _prepare(path)
    presentation.save(str(path))
    return path


def html_body(blocks: list[Block]) -> str:
    """The blocks as HTML body markup (h1/h2/p/ul/table)."""
    out: list[str] = []
    in_list = False
    for style, text in blocks:
        if in_list and style != "li":
            out.append("</ul>")
            in_list = False
        if style == "li":
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{escape(text)}</li>")
        elif style == "table":
            rows = _rows(text)
            head = "".join(f"<th>{escape(c)}</th>" for c in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            tag = {"title": "h1", "h1": "h1", "h2": "h2"}.get(style, "p")
            out.append(f"<{tag}>{escape(text)}</{tag}>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


def make_html(path: Path, blocks: list[Block], *, title: str | None = None, encoding: str = "utf-8") -> Path:
    """An HTML page with a <meta charset> for ``encoding``, plus a script and a nav that must be ignored."""
    head = f'<meta charset="{encoding}"><title>{escape(title or "")}</title>'
    html = (
        f"<!DOCTYPE html><html><head>{head}</head><body>"
        "<nav><a href='/'>Home</a> | <a href='/faq'>FAQ</a></nav>"
        "<script>var ignored = 'script text';</script>"
        f"<main>{html_body(blocks)}</main></body></html>"
    )
    path = _prepare(path)
    path.write_bytes(html.encode(encoding))
    return path


def make_md(path: Path, blocks: list[Block], *, encoding: str = "utf-8") -> Path:
    """A Markdown file: '#'/'##' headings, paragraphs, '-' lists and pipe tables."""
    out: list[str] = []
    for style, text in blocks:
        if style in ("title", "h1"):
            out.append(f"# {text}\n")
        elif style == "h2":
            out.append(f"## {text}\n")
        elif style == "li":
            out.append(f"- {text}")
        elif style == "table":
            rows = _rows(text)
            lines = ["| " + " | ".join(r) + " |" for r in rows]
            lines.insert(1, "|" + "---|" * len(rows[0]))
            out.append("\n" + "\n".join(lines) + "\n")
        else:
            out.append(f"\n{text}\n")
    path = _prepare(path)
    path.write_bytes("\n".join(out).encode(encoding))
    return path


def make_eml(
    path: Path,
    *,
    subject: str,
    body: str,
    sender: str = "Support <support@example.com>",
    to: str = "Customer <customer@example.org>",
    date: datetime | None = None,
    html: str | None = None,
    attachments: dict[str, bytes] | None = None,
) -> Path:
    """An RFC 5322 message: text/plain ``body`` (plus an ``html`` alternative) and optional attachments."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(date or datetime(2025, 3, 14, 9, 30, tzinfo=UTC))
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data in (attachments or {}).items():
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    path = _prepare(path)
    path.write_bytes(msg.as_bytes())
    return path


def make_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    """A CSV file (first row is the header)."""
    import csv

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path = _prepare(path)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def make_txt(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """A plain-text file in the given encoding (e.g. "cp1252" or "latin-1" for legacy files)."""
    path = _prepare(path)
    path.write_bytes(text.encode(encoding))
    return path


# ------------------------------------------------------------------------------------------- bad files


def make_truncated_pdf(path: Path, keep: float = 0.6) -> Path:
    """A real three-page PDF cut after ``keep`` of its bytes (an interrupted download)."""
    tmp = _prepare(path).with_suffix(".full.pdf")
    make_pdf(tmp, [[("h1", f"Part {n}"), ("p", f"Text of part {n}. " * 40)] for n in range(1, 4)])
    data = tmp.read_bytes()
    tmp.unlink()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_encrypted_pdf(path: Path, password: str = "secret") -> Path:
    """A PDF that needs a password to open (RC4-128, so pypdf needs no crypto library)."""
    from pypdf import PdfWriter

    tmp = _prepare(path).with_suffix(".plain.pdf")
    make_pdf(tmp, [[("h1", "Confidential"), ("p", "Salary bands are secret.")]])
    writer = PdfWriter(clone_from=str(tmp))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    with open(path, "wb") as fh:
        writer.write(fh)
    tmp.unlink()
    return path


def make_scanned_pdf(path: Path, pages: int = 2, text: str = "this text exists only as pixels.") -> Path:
    """A PDF whose pages are only raster images (text drawn as pixels): no text layer at all."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    path = _prepare(path)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for n in range(pages):
        image = Image.new("L", (600, 800), 255)
        draw = ImageDraw.Draw(image)
        for y in range(60, 700, 40):
            draw.text((50, y), f"Scanned page {n + 1}: {text}", fill=0)
        pdf.drawImage(ImageReader(image), 40, 40, width=515, height=760)
        pdf.showPage()
    pdf.save()
    return path


def make_zip_bomb_docx(path: Path, unpacked_mb: int = 5) -> Path:
    """A valid DOCX plus a member of ``unpacked_mb`` MB of zeros (compresses about 1000:1)."""
    path = make_docx(path, [("h1", "Innocent"), ("p", "Nothing to see here.")])
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("word/media/padding.bin", "w") as member,
    ):
        for _ in range(unpacked_mb):
            member.write(chunk)
    return path


def make_corrupt_docx(path: Path) -> Path:
    """A DOCX cut in half: the zip central directory is gone."""
    tmp = make_docx(_prepare(path).with_suffix(".full.docx"), [("h1", "Broken"), ("p", "Half of it.")])
    data = tmp.read_bytes()
    tmp.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_binary_with_txt_suffix(path: Path) -> Path:
    """Binary data (a PNG header and NUL-rich bytes) saved under a text extension."""
    path = _prepare(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16)
    return path


def make_big_file(path: Path, mb: float) -> Path:
    """A sparse file of ``mb`` megabytes (instant to create, no disk used): for size-limit tests."""
    path = _prepare(path)
    with open(path, "wb") as fh:
        fh.truncate(int(mb * 1024 * 1024))
    return path
