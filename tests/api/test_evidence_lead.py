"""/v1/ask gives each evidence span's lead-in: a table row quoted alone still says what table it is of."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.settings import Settings
from tests.api.helpers import ApiHandle
from tests.helpers import closed_llm_url

ROWS = "".join(
    f"<tr><td>{mode}</td><td>{pa} Pa</td><td>{minutes} min</td></tr>"
    for mode, pa, minutes in [("Eco", 1500, 180), ("Standard", 2500, 120), ("Turbo", 4000, 60), ("Max", 5000, 45)]
)
PAGE = (
    "<html><body><h1>Suction modes</h1><p>The Sweep S3 vacuums in four suction modes, rated as follows:</p>"
    f"<table><tr><th>Mode</th><th>Suction</th><th>Runtime</th></tr>{ROWS}</table></body></html>"
).encode()


def test_a_quoted_table_row_comes_with_its_lead_in(make_api: Callable[..., ApiHandle], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data").with_overrides(
        llm__base_url=closed_llm_url(),
        answer__mode="quote",
        answer__answerable_threshold=0.0,  # one small page: the decline model is not what is tested here
        evidence__max_block_chars=0,
    )
    api = make_api(settings)
    admin = api.key()
    sent = api.client.post(
        "/v1/collections/kb/documents", headers=api.auth(admin), files=[("files", ("modes.html", PAGE))]
    )
    assert sent.status_code == 202, sent.text
    job = api.state.jobs.wait(sent.json()["job_id"], 300)
    assert job is not None and job.state == "done", job
    body = api.client.post(
        "/v1/ask", headers=api.auth(admin), json={"question": "How long does Turbo mode run?", "collection": "kb"}
    ).json()
    assert body["evidence"], body
    best = body["evidence"][0]
    assert best["text"] == "Mode: Turbo | Suction: 4000 Pa | Runtime: 60 min", body["evidence"]
    assert best["lead"] == "The Sweep S3 vacuums in four suction modes, rated as follows:"
    assert f'"{best["lead"]} … {best["text"]}"' in body["answer"]
