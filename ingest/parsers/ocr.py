"""OCR for PDF pages without a text layer: PDFium renders the page, RapidOCR (ONNX) reads it.

rapidocr-onnxruntime ships its detection and recognition models inside the wheel, so OCR works
offline with nothing to download. Only pages that have no text of their own are rendered. Each page
runs under a time limit in a helper thread; ONNX Runtime cannot be interrupted, so a page that runs
over is abandoned (its thread finishes on its own) and the document's remaining pages are not
OCR'd, which the caller reports.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pypdfium2 as pdfium

_POINTS_PER_INCH = 72.0


@dataclass
class OcrLine:
    text: str
    left: float  # PDF coordinates (points, y grows upwards)
    baseline: float
    height: float  # text height in points


class OcrTimeout(Exception):
    """The page took longer than the per-page limit."""


class OcrUnavailable(Exception):
    """The OCR engine cannot be loaded; ``reason`` says how to install it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    """One engine per process: loading its three ONNX models takes about a second; it keeps no state
    between images."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # an optional install that went missing
        raise OcrUnavailable(f"the OCR engine is not installed ({exc}): `pip install rapidocr-onnxruntime`") from exc
    return RapidOCR()


def ocr_page(page: pdfium.PdfPage, dpi: float, timeout_s: float) -> list[OcrLine]:
    """The text lines OCR reads on ``page``, top to bottom; raises OcrTimeout past ``timeout_s``."""
    engine = _engine()
    scale = dpi / _POINTS_PER_INCH
    image = page.render(scale=scale, grayscale=True).to_pil().convert("RGB")
    pixels = np.asarray(image)[:, :, ::-1]  # RGB -> BGR, as OpenCV (and RapidOCR) expect
    height = page.get_height()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = engine(pixels)[0]
        except Exception as exc:  # handed to the caller's thread, which decides
            box["error"] = exc

    worker = threading.Thread(target=run, name="docqa-ocr", daemon=True)
    worker.start()
    worker.join(timeout_s if timeout_s > 0 else None)
    if worker.is_alive():
        raise OcrTimeout
    if "error" in box:
        raise box["error"]
    return _lines(box.get("result") or [], scale, height)


def _lines(result: list[Any], scale: float, page_height: float) -> list[OcrLine]:
    """Word boxes grouped into lines: boxes whose vertical extents overlap by half sit on one line."""
    boxes = []
    for points, text, _score in result:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        if text.strip():
            boxes.append((min(ys), max(ys), min(xs), text.strip()))
    boxes.sort()
    rows: list[list[tuple[float, float, float, str]]] = []
    for box in boxes:
        top, bottom = box[0], box[1]
        if rows:
            row_top = min(b[0] for b in rows[-1])
            row_bottom = max(b[1] for b in rows[-1])
            overlap = min(bottom, row_bottom) - max(top, row_top)
            if overlap >= 0.5 * min(bottom - top, row_bottom - row_top):
                rows[-1].append(box)
                continue
        rows.append([box])
    lines = []
    for row in rows:
        row.sort(key=lambda b: b[2])
        top = min(b[0] for b in row) / scale
        bottom = max(b[1] for b in row) / scale
        lines.append(OcrLine(" ".join(b[3] for b in row), row[0][2] / scale, page_height - bottom, bottom - top))
    return lines
