"""The embeddable widget (``/widget.js``, one self-contained script, no build step) and a demo page."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["widget"])

STATIC = Path(__file__).resolve().parent / "static"
WIDGET_CACHE_S = 300  # browsers re-check the script this often (a new deployment shows up within minutes)


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@router.get("/widget.js", response_class=Response)
def widget_js() -> Response:
    """The chat widget. Embed with
    `<script src="https://docs.example.com/widget.js" data-key="WIDGET_KEY" data-collection="support" async></script>`;
    optional `data-title`, `data-color`, `data-api` (API base URL when not the script's origin), `data-open`."""
    return Response(
        _asset("widget.js"),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={WIDGET_CACHE_S}", "Cross-Origin-Resource-Policy": "cross-origin"},
    )


@router.get("/demo", response_class=HTMLResponse, include_in_schema=False)
def demo() -> HTMLResponse:
    """A page that embeds the widget: /demo?key=WIDGET_KEY&collection=NAME (the key must list this origin)."""
    return HTMLResponse(_asset("demo.html"), headers={"Cache-Control": "no-store"})
