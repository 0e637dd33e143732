"""Smoke test in a real browser: `docqa ui` serves the app, headless Chromium asks a sample question
against the real vLLM server, and a screenshot of the answer is saved to test-output/ui-answer.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.settings import Settings
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, REPO, screenshot_for_docs
from tests.ui.helpers import RunningUI

SCREENSHOT = REPO / "test-output" / "ui-answer.png"
QUESTION = "How long is the warranty on the Sweep S3?"  # data/QUESTIONS.md, question 6
WAIT_MS = 240_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium missing: run `make browser`"),
]


@pytest.fixture
def ui_settings(vllm_server, ui_data_dir: Path) -> Settings:
    return vllm_server.settings.with_overrides(data_dir=ui_data_dir)


def test_answered_question_in_chromium(ui_server: RunningUI, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOT.parent.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every run
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1200},
        )
        try:
            page = browser.new_page()
            page.goto(ui_server.url, wait_until="domcontentloaded")
            box = page.get_by_test_id("stChatInputTextArea")
            expect(box).to_be_enabled(timeout=WAIT_MS)
            box.fill(QUESTION)
            box.press("Enter")

            assistant = page.get_by_test_id("stChatMessage").nth(1)
            expect(assistant.get_by_test_id("stFeedback")).to_be_visible(timeout=WAIT_MS)  # the answer is final
            sources = assistant.get_by_test_id("stExpander")  # the cited sources, then the other passages
            expect(sources.first).to_contain_text(re.compile(r"(Sources|Passages consulted) \(\d+\)"))
            expect(assistant).to_contain_text("sweep_s3_manual.pdf")
            expect(assistant).to_contain_text("page 5")
            expect(assistant.get_by_role("button", name="Download").first).to_be_visible()
            assert page.get_by_test_id("stException").count() == 0
            answer = assistant.get_by_test_id("stMarkdownContainer").first.inner_text()
            assert answer.strip(), "the answer text is empty"
            page.wait_for_timeout(500)  # let the last frame settle before the screenshot
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            screenshot_for_docs(page, "staff-ui.png")
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
