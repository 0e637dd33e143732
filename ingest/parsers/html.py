"""HTML (and Markdown, rendered to HTML first): headings open sections, blocks become elements.

A small walker over BeautifulSoup's tree rather than unstructured's partition_html: unstructured
classifies every paragraph with a spaCy model it downloads on first use, which fails offline.

Web exports carry page furniture: banners, "Prev / Home / Next" bars, in-page tables of contents.
readability-lxml picks the page's main content (trafilatura was measured too: it drops every heading
of DocBook pages, and turns inline code into blocks); when its pick holds less than 85% of the
page's text (after the rules below) it guessed wrong (short lists and tables are what it drops)
and the whole page is read.
Either way the walker skips navigation by role, by class or id (nav, toc, breadcrumb, menu, ...)
and blocks whose text is mostly link text (link lists, contents), keeping headings.
"""

from __future__ import annotations

import re

import markdown
from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag

from ingest.parsers.common import ElementBuilder, Unparseable, one_line, table_text

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "head",
        "nav",
        "iframe",
        "object",
        "embed",
        "canvas",
        "button",
        "select",
        "option",
        "input",
        "textarea",
        "map",
        "audio",
        "video",
    }
)
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "main",
        "menu",
        "ol",
        "p",
        "search",
        "section",
        "summary",
        "ul",
        "tr",
        "td",
        "th",
    }
)
_WS = re.compile(r"\s+")
_NAV_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar"})
_NAV_TOKEN = re.compile(
    r"(?:.*[-_])?(?:nav|navbar|navigation|navheader|navfooter|docnav|breadcrumbs?|menu|sidebar|toc|skip-?links?"
    r"|cookies?|banner|footer|header|aside|pagination|pager|related|share|social)(?:[-_].*)?",
    re.I,
)
_LINK_DENSE = 0.7  # a block whose text is this much link text, with several links, is navigation
_MIN_LINKS = 3
_MAIN_SHARE = 0.85  # readability drops short lists and tables: trust its pick only when it keeps most text
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_MD_EXTENSIONS = ["tables", "fenced_code", "sane_lists", "def_list"]
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.+?)[\"']?\s*$", re.MULTILINE)


def declared_charset(data: bytes) -> str | None:
    """The encoding an HTML page declares in a <meta> tag near its top, if any."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def html_elements(html: str, builder: ElementBuilder, *, main_content: bool = True) -> str | None:
    """Walk ``html`` into ``builder``; return the page's <title> text, if it has one."""
    soup = BeautifulSoup(html, "lxml")
    title_tag = soup.find("title")
    title = one_line(title_tag.get_text()) if title_tag else None
    whole = _walk(soup)
    chosen = whole
    if main_content:
        main = _readability(html)
        if main is not None:
            picked = _walk(main)
            if _length(picked) >= _MAIN_SHARE * _length(whole):
                chosen = picked
    builder.elements.extend(chosen.elements)
    builder.heading = chosen.heading
    return title or None


def _walk(soup: Tag) -> ElementBuilder:
    builder = ElementBuilder()
    try:
        _Walker(builder).walk(soup, [], "NarrativeText", flush=True)
    except RecursionError as exc:
        raise Unparseable("the HTML is nested too deeply to read: simplify or re-save the page") from exc
    return builder


def _length(builder: ElementBuilder) -> int:
    return sum(len(e.text) for e in builder.elements)


def _readability(html: str) -> Tag | None:
    from readability import Document  # imported late: only HTML needs it
    from readability.readability import Unparseable as NoContent

    try:
        summary = Document(html).summary(html_partial=True)
    except NoContent:
        return None  # nothing it could score: read the whole page
    return BeautifulSoup(summary, "lxml")


def _boilerplate(tag: Tag) -> bool:
    """Navigation, banners, contents: by role, by class/id name, or by being mostly links."""
    if tag.name in _HEADINGS or tag.name in ("html", "body", "main", "article"):
        return False
    if str(tag.get("role", "")).lower() in _NAV_ROLES:
        return True
    landmark = tag.name if tag.name in ("header", "footer", "aside") else ""
    names = [landmark, *tag.get("class", []), str(tag.get("id", ""))]
    if any(name and _NAV_TOKEN.fullmatch(name) for name in names) and not tag.find(["h1", "h2", "h3"]):
        return True  # a header or footer holding a section heading is content (an article's title block)
    if tag.name in ("ul", "ol", "dl", "table", "div", "p", "section", "menu"):
        links = tag.find_all("a", limit=_MIN_LINKS)
        if len(links) >= _MIN_LINKS:
            text = len(_WS.sub("", tag.get_text()))
            linked = sum(len(_WS.sub("", a.get_text())) for a in tag.find_all("a"))
            return text > 0 and linked >= _LINK_DENSE * text
    return False


def markdown_elements(text: str, builder: ElementBuilder) -> str | None:
    """Render Markdown to HTML and walk it; return the front-matter title, if any."""
    title = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1) if found else None
        text = text[front.end() :]
    html_elements(markdown.markdown(text, extensions=_MD_EXTENSIONS), builder, main_content=False)
    return title


def _hidden(tag: Tag) -> bool:
    style = str(tag.get("style", "")).replace(" ", "").lower()
    return tag.has_attr("hidden") or tag.get("aria-hidden") == "true" or "display:none" in style


class _Walker:
    """Depth-first walk that gathers inline text into a buffer and flushes it at block boundaries."""

    def __init__(self, builder: ElementBuilder) -> None:
        self.builder = builder

    def walk(self, node: Tag, buf: list[str], kind: str, *, flush: bool = False) -> None:
        for child in node.children:
            if isinstance(child, PreformattedString):
                continue  # comments, doctype, CDATA, processing instructions
            if isinstance(child, NavigableString):
                buf.append(_WS.sub(" ", str(child)))
                continue
            if not isinstance(child, Tag) or child.name in _SKIP or _hidden(child) or _boilerplate(child):
                continue
            name = child.name
            if name == "br":
                buf.append("\n")
            elif name in _HEADINGS:
                self.flush(buf, kind)
                self.builder.title(child.get_text(" "))
            elif name == "table":
                self.flush(buf, kind)
                self.table(child)
            elif name == "pre":
                self.flush(buf, kind)
                self.builder.add(child.get_text(), "CodeSnippet", keep_layout=True)
            elif name == "dl":
                self.flush(buf, kind)
                self.definitions(child)
            elif name == "li":
                self.flush(buf, kind)
                self.walk(child, [], "ListItem", flush=True)
            elif name in _BLOCKS:
                self.flush(buf, kind)
                self.walk(child, buf, kind)
                self.flush(buf, kind)
            else:
                self.walk(child, buf, kind)  # inline: its text joins the current paragraph
        if flush:
            self.flush(buf, kind)

    def flush(self, buf: list[str], kind: str) -> None:
        if buf:
            self.builder.add("".join(buf), kind)
            buf.clear()

    def table(self, table: Tag) -> None:
        caption = table.find("caption")
        if caption is not None and caption.find_parent("table") is table:
            self.builder.add(caption.get_text(" "), "Caption")
        rows, header = _grid(table)
        text = table_text(rows, header=header)
        if text:
            self.builder.add(text, "Table")

    def definitions(self, dl: Tag) -> None:
        """A definition list: each term with its definition in one element ("term: definition"), so
        no chunk boundary falls between them; a definition's code or table follows, glued by the ":"."""
        terms: list[str] = []
        for child in _entries(dl):
            if child.name == "dt":
                terms.append(one_line(child.get_text(" ")))
                continue
            inner = ElementBuilder()
            inner.heading = self.builder.heading
            _Walker(inner).walk(child, [], "NarrativeText", flush=True)
            term = " / ".join(t for t in terms if t)
            terms = []
            texts: list[str] = []
            rest = list(inner.elements)
            while rest and rest[0].kind in ("NarrativeText", "ListItem"):
                texts.append(rest.pop(0).text)
            if term or texts:
                first = " ".join([f"{term}:" if term else "", *texts[:1]]).strip()
                self.builder.add("\n".join([first, *texts[1:]]), "ListItem")
            self.builder.elements.extend(rest)
        if terms:  # terms with no definition
            self.builder.add(" / ".join(terms), "ListItem")


def _entries(dl: Tag) -> list[Tag]:
    """The dt and dd children of a dl, also inside the div wrappers HTML allows around each pair."""
    out = []
    for child in dl.find_all(["dt", "dd"]):
        if child.find_parent("dl") is dl:
            out.append(child)
    return out


def _grid(table: Tag) -> tuple[list[list[str]], bool]:
    """The table's rows as a grid, a cell spanning rows or columns repeated in each (so every row keeps
    its own values in its own columns); and whether the first row is a header: its cells are th or it
    sits in thead, or, in a table without th cells, it reads like column names (``_looks_like_header``)."""
    rows: list[list[str]] = []
    pending: dict[int, tuple[int, str]] = {}  # column -> (rows still covered, text) from a rowspan above
    first_is_header = False
    any_th = False
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # a nested table's rows belong to that table's cell text
        cells = tr.find_all(["td", "th"], recursive=False)
        any_th = any_th or any(c.name == "th" for c in cells)
        if not rows:
            first_is_header = bool(cells) and (
                all(c.name == "th" for c in cells) or tr.find_parent("thead") is not None
            )
        row: list[str] = []
        queue = list(cells)
        while queue or pending:
            column = len(row)
            if column in pending:
                left, text = pending[column]
                row.append(text)
                if left > 1:
                    pending[column] = (left - 1, text)
                else:
                    del pending[column]
                continue
            if not queue:
                if pending and max(pending) > column:
                    row.append("")
                    continue
                break
            cell = queue.pop(0)
            text = cell.get_text(" ")
            for _ in range(_span(cell, "colspan")):
                down = _span(cell, "rowspan")
                if down > 1:
                    pending[len(row)] = (down - 1, text)
                row.append(text)
        rows.append(row)
    if any_th:
        return rows, first_is_header
    first = next((r for r in rows if any(c.strip() for c in r)), None)
    return rows, first is not None and _looks_like_header(first)


def _looks_like_header(row: list[str]) -> bool:
    """A first row of a table without th cells is its header when it reads like column names: two or more
    short cells without figures ("Name | Default | Meaning"), not data ("%d | day of month: 00")."""
    cells = [" ".join(c.split()) for c in row if c.strip()]
    return len(cells) >= 2 and all(len(c.split()) <= 6 and not re.search(r"\d|:\s", c) for c in cells)


def _span(cell: Tag, name: str) -> int:
    try:
        return max(1, min(int(str(cell.get(name, 1))), 100))
    except ValueError:
        return 1
