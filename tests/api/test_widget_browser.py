"""The widget in headless Chromium, embedded in a page served from another origin (another 127.0.0.1
port): it shows an answer from the real model, checked against its sources, with the supporting
sentence marked in the cited passage; it renders a poisoned document
as text; it works from the keyboard and on a phone-sized screen; a page whose origin the key does not
list gets no answers; a quoted table row shows as a small table and a command as code. Screenshots go to
test-output/widget/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.api.helpers import ApiHandle, HostPage, share_embedder
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, REPO, closed_llm_url, screenshot_for_docs

OUTPUT = REPO / "test-output" / "widget"
WARRANTY = "How long is the warranty on the Sweep S3?"  # QUESTIONS.md 6: sweep_s3_manual.pdf, page 5
BATTERY = "What is the battery capacity of the Sweep S3?"  # QUESTIONS.md 1: sweep_s3_manual.pdf, page 1
WAIT_MS = 240_000
# For the README's picture: the host page without its hostile test styles (the widget is unchanged).
PLAIN_PAGE = (
    "body { font: 16px system-ui, sans-serif !important; color: #222 !important; }"
    " button, div, p, textarea { background: transparent !important; border: 0 !important; }"
    " header { background: #20313f !important; }"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium missing: run `make browser`"),
]

HOST_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kestrel Home Robotics</title>
<style>
  /* Hostile page styles: the widget's shadow root must not inherit or match any of these. */
  body {{ font: 18px Georgia, serif; color: #7a0000; margin: 0; }}
  button, div, p, textarea {{ background: yellow !important; border: 5px dashed red !important; }}
  header {{ background: #20313f; color: #fff; padding: 24px 40px; }}
  main {{ padding: 24px 40px; max-width: 720px; }}
</style></head>
<body>
<header><h1>Kestrel Home Robotics</h1></header>
<main><h2>Sweep S3 support</h2><p>Questions about your robot? Ask our assistant (bottom right).</p></main>
<script src="{api}/widget.js" data-key="{key}" data-collection="{collection}"
        data-title="Kestrel support" async></script>
</body></html>
"""


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """``chromium(viewport)``: a fresh headless Chromium profile; closed at teardown."""
    from playwright.sync_api import sync_playwright

    contexts = []
    with sync_playwright() as pw:

        def launch(viewport: dict[str, int] | None = None, **options: object):
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / f"profile{len(contexts)}"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=viewport or {"width": 1280, "height": 900},
                **options,
            )
            contexts.append(context)
            return context

        try:
            yield launch
        finally:
            for context in contexts:
                context.close()


def open_widget(page) -> None:
    launcher = page.locator("button.launcher")
    launcher.wait_for(timeout=30_000)
    launcher.click()
    page.locator("textarea").wait_for(state="visible")


@pytest.mark.integration
def test_answers_with_sources_and_marked_evidence(
    chromium, serve_api, vllm_server, api_data_dir: Path, host_page: Callable[[str], HostPage]
) -> None:
    api = serve_api(vllm_server.settings.with_overrides(data_dir=api_data_dir, llm__max_tokens=96))
    site_page, _ = _embedded(host_page, api, "support")
    browser = chromium()
    page = browser.new_page()
    page.goto(site_page.url)
    open_widget(page)
    page.locator("textarea").fill(BATTERY)
    page.locator("textarea").press("Enter")
    answer = page.locator(".msg.bot").last
    # The final answer (with its sources) replaces the pending bubble, which shows the passages found while
    # the answer is checked (aria-busy); or an error says why not.
    page.locator(".msg.bot:not([aria-busy]) .sources, .msg.error").first.wait_for(timeout=WAIT_MS)
    errors = page.locator(".msg.error").all_inner_texts()
    assert not errors, errors
    assert answer.locator("div").first.inner_text().strip()
    # The supporting sentence is marked inside its passage, which is open without a click.
    mark = answer.locator(".sources details[open] blockquote mark").first
    assert mark.is_visible() and len(mark.inner_text()) > 10
    # A citation: the answer's [n] marker is a button that opens the cited passage (file and page).
    assert answer.locator(".sources h3").text_content() == "Sources", "the answer cites nothing"
    labels = answer.locator(".sources summary").all_inner_texts()
    assert any(label.startswith("[") and "sweep_s3_manual.pdf, page 1" in label for label in labels), labels
    cite = answer.locator("button.cite").first
    cite.click()
    opened = answer.locator(f".sources details[data-n='{cite.inner_text()}']")
    assert opened.get_attribute("open") is not None and opened.locator("blockquote").is_visible()
    # The conversation survives a reload (page session) and carries the conversation id.
    page.reload()
    open_widget(page)
    assert page.locator(".msg.user").first.inner_text() == BATTERY
    assert page.locator(".msg.bot .sources").count() == 1
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.locator(".msg.bot .sources details").first.locator("summary").click()
    page.screenshot(path=str(OUTPUT / "widget-answer.png"))
    assert (OUTPUT / "widget-answer.png").stat().st_size > 10_000
    page.locator(".msg.bot .sources details").first.evaluate("d => { d.open = true; }")  # the marked sentence
    screenshot_for_docs(page, "widget.png", css=PLAIN_PAGE)


def _embedded(host_page: Callable[[str], HostPage], api: ApiHandle, collection: str) -> tuple[HostPage, str]:
    """Serve a host page from a fresh origin, then write the embed tag with a key for that origin."""
    placeholder = host_page("<!doctype html><title>pending</title>")
    key = api.key("widget", collections=[collection], origins=[placeholder.origin])
    api.state.keys._origins = None  # count the new origin at once, not after the two-second cache
    html = HOST_HTML.format(api=api.base_url, key=key, collection=collection)
    index = placeholder.root / "index.html"
    index.write_text(html)
    return placeholder, key


def test_poisoned_document_is_text_keyboard_and_phone(
    chromium, serve_api, api_data_dir: Path, host_page: Callable[[str], HostPage]
) -> None:
    # The model server is down: the widget shows the passages, i.e. the poisoned document's raw text.
    api = serve_api(Settings(data_dir=api_data_dir).with_overrides(llm__base_url=closed_llm_url()))
    site_page, _ = _embedded(host_page, api, "poisoned")
    browser = chromium(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = browser.new_page()
    page.goto(site_page.url)
    launcher = page.locator("button.launcher")
    launcher.wait_for(timeout=30_000)

    # Keyboard only: Tab reaches the launcher, Enter opens the panel with the cursor in the question box.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "launcher"
    page.keyboard.press("Enter")
    page.locator("textarea").wait_for(state="visible")
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.tagName") == "TEXTAREA"
    panel = page.locator(".panel").bounding_box()
    assert panel["width"] == 390 and panel["height"] == 844  # full screen on a phone

    page.keyboard.type("How long does descaling take?")
    page.keyboard.press("Enter")
    quote = page.locator(".msg.bot .sources details blockquote").first
    page.locator(".msg.bot .sources summary").first.wait_for(timeout=60_000)
    assert "unavailable" in page.locator(".msg.bot .note").first.inner_text()
    page.locator(".msg.bot .sources summary").first.click()
    text = quote.inner_text()
    assert '<img src="x" onerror="window.__pwned = 1">' in text and "<script>" in text
    root = "document.querySelector('[data-docqa-widget]').shadowRoot"
    assert page.evaluate(f"{root}.querySelectorAll('img, script, b, #injected').length") == 0
    assert page.evaluate("document.querySelectorAll('img, #injected').length") == 0
    assert page.evaluate("window.__pwned === undefined")
    # Page styles (yellow, dashed red borders on every div and button) do not reach the widget.
    assert page.evaluate(f"getComputedStyle({root}.querySelector('.panel')).backgroundColor") == "rgb(255, 255, 255)"
    host_style = "getComputedStyle(document.querySelector('[data-docqa-widget]'))"
    assert page.evaluate(f"{host_style}.borderTopWidth") == "0px"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-phone.png"))

    # Escape closes the panel and gives the focus back to the launcher.
    page.locator("textarea").focus()
    page.keyboard.press("Escape")
    assert page.locator(".panel").is_hidden()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "launcher"


def test_page_from_an_unlisted_origin_gets_no_answer(
    chromium, serve_api, api_data_dir: Path, host_page: Callable[[str], HostPage]
) -> None:
    api = serve_api(Settings(data_dir=api_data_dir).with_overrides(llm__base_url=closed_llm_url()))
    listed = host_page("<!doctype html><title>listed</title>")
    key = api.key("widget", collections=["support"], origins=[listed.origin])
    intruder = host_page(HOST_HTML.format(api=api.base_url, key=key, collection="support"))
    page = chromium().new_page()
    page.goto(intruder.url)
    open_widget(page)
    page.locator("textarea").fill(WARRANTY)
    page.locator("textarea").press("Enter")
    error = page.locator(".msg.error")
    error.wait_for(timeout=30_000)
    assert page.locator(".msg.bot").count() == 0
    assert "sweep_s3_manual" not in page.content()


def test_sources_and_checking_show_before_the_checked_answer(
    chromium, serve_api, api_data_dir: Path, host_page: Callable[[str], HostPage]
) -> None:
    """Verify mode holds the answer back until it is checked: meanwhile the widget shows the passages found
    and that it is checking, not an empty bubble. A slow model (fake_model_server's delay) makes the wait."""
    from tests.fake_model_server import base_url, fake_model_server

    with fake_model_server(["The battery ", "holds 5200 mAh ", "[1]."], delay=0.7) as model:
        settings = Settings(data_dir=api_data_dir).with_overrides(llm__base_url=base_url(model), answer__mode="verify")
        api = serve_api(settings)
        site_page, _ = _embedded(host_page, api, "support")
        page = chromium().new_page()
        page.goto(site_page.url)
        open_widget(page)
        page.locator("textarea").fill(BATTERY)
        page.locator("textarea").press("Enter")
        checking = page.locator(".msg.bot[aria-busy='true'] .checking")
        checking.wait_for(timeout=60_000)
        assert checking.inner_text() == "Checking the answer…"
        pending = page.locator(".msg.bot[aria-busy='true']")
        assert pending.locator(".sources h3").text_content() == "Sources found"
        assert "sweep_s3_manual.pdf" in " ".join(pending.locator(".sources summary").all_inner_texts())
        assert page.locator(".msg.bot:not([aria-busy])").count() == 0, "the answer came before the checking state"
        final = page.locator(".msg.bot:not([aria-busy])")
        final.wait_for(timeout=60_000)
    assert final.locator("div").first.inner_text().strip()
    assert page.locator(".checking").count() == 0 and page.locator(".msg.bot[aria-busy='true']").count() == 0


# A manual page with a table (a cell holding markup, which must show as text) and a command block.
STRUCTURED_HTML = """<!doctype html><html><head><title>Sweep S3 modes</title></head><body>
<h1>Cleaning modes</h1>
<p>The Sweep S3 cleans in three modes, each with its own suction power and runtime on one charge.</p>
<p>The cleaning modes of the Sweep S3 are listed below:</p>
<table>
<tr><th>Mode</th><th>Suction</th><th>Runtime</th></tr>
<tr><td>Eco</td><td>1500 Pa</td><td>180 min</td></tr>
<tr><td>Standard</td><td>2500 Pa</td><td>120 min</td></tr>
<tr><td>Turbo</td><td>&lt;b id="cell"&gt;4000 Pa&lt;/b&gt;</td><td>65 min</td></tr>
</table>
<h1>Factory reset</h1>
<p>To reset the Sweep S3 to its factory settings from a computer, run:</p>
<pre>$ sweepctl reset --factory
$ sweepctl reboot --now</pre>
</body></html>
"""


def test_a_table_row_shows_as_a_table_and_a_command_as_code(
    chromium, serve_api, embedder: SentenceTransformerEmbedder, tmp_path: Path, host_page: Callable[[str], HostPage]
) -> None:
    """Quote mode asks no model, so the real pipeline's evidence (a row with its lead-in, per item; the best
    one only, to know which row is marked) reaches the real widget with the model server down."""
    data = tmp_path / "data"
    page_file = tmp_path / "modes.html"
    page_file.write_text(STRUCTURED_HTML)
    assert share_embedder(Settings(data_dir=data), embedder).ingestor.ingest([page_file], "modes").ok
    settings = Settings(data_dir=data).with_overrides(
        llm__base_url=closed_llm_url(), answer__mode="quote", evidence__max_block_chars=0, evidence__max_spans=1
    )
    api = serve_api(settings)
    site_page, _ = _embedded(host_page, api, "modes")
    page = chromium().new_page()
    page.goto(site_page.url)
    open_widget(page)

    page.locator("textarea").fill("What is the runtime of the Sweep S3 in Turbo mode?")
    page.locator("textarea").press("Enter")
    answer = page.locator(".msg.bot:not([aria-busy])").last
    page.locator(".msg.bot:not([aria-busy]) .sources, .msg.error").first.wait_for(timeout=WAIT_MS)
    assert not page.locator(".msg.error").all_inner_texts()
    # The quoted answer: its lead-in, then the row as a one-row table under the header of its table.
    quoted = answer.locator(".quoted")
    assert "The cleaning modes of the Sweep S3 are listed below:" in quoted.inner_text()
    assert quoted.locator("th").all_inner_texts() == ["Mode", "Suction", "Runtime"]
    assert quoted.locator("tbody td").all_inner_texts() == ["Turbo", '<b id="cell">4000 Pa</b>', "65 min"]
    assert answer.locator("button.cite").count() == 1
    # The cited passage: the whole table, the evidence row highlighted, no pipe text left.
    source = answer.locator(".sources details[open] blockquote")
    assert source.locator("th").all_inner_texts() == ["Mode", "Suction", "Runtime"]
    rows = [r.locator("td").all_inner_texts() for r in source.locator("tbody tr").all()]
    assert rows == [
        ["Eco", "1500 Pa", "180 min"],
        ["Standard", "2500 Pa", "120 min"],
        ["Turbo", '<b id="cell">4000 Pa</b>', "65 min"],
    ]
    assert source.locator("tr.hit td").all_inner_texts() == ["Turbo", '<b id="cell">4000 Pa</b>', "65 min"]
    assert " | " not in source.inner_text()
    root = "document.querySelector('[data-docqa-widget]').shadowRoot"
    assert page.evaluate(f"{root}.querySelectorAll('b, #cell').length") == 0  # markup in a cell is text

    page.locator("button[aria-label='New conversation']").click()  # a follow-up would need the model
    page.locator("textarea").fill("How do I reset the Sweep S3 to its factory settings from a computer?")
    page.locator("textarea").press("Enter")
    page.locator(".msg.bot:not([aria-busy]) .sources").first.wait_for(timeout=WAIT_MS)
    answer = page.locator(".msg.bot:not([aria-busy])").last
    code = answer.locator(".quoted pre code")
    assert code.count() == 1 and code.inner_text().startswith("$ sweepctl ")
    assert page.evaluate(f"getComputedStyle({root}.querySelector('.quoted pre')).whiteSpace") == "pre"
    passage = answer.locator(".sources details[open] blockquote pre code")
    assert passage.inner_text() == "$ sweepctl reset --factory\n$ sweepctl reboot --now"
    assert passage.locator("mark").count() >= 1  # the evidence line, marked inside the code
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-structure.png"))
