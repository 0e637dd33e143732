"""The embedder: docqa's numpy BERT encoder gives sentence-transformers' vectors, and a CLI question
does not import torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from rag.bert_numpy import BertEncoder, _gelu
from rag.embedder import SentenceTransformerEmbedder, resolve_embedder_path
from rag.settings import BUNDLED_EMBEDDER, EmbedderSettings
from tests.helpers import REPO

TEXTS = [
    "How long is the warranty?",
    "",
    "Ünïcödé, 日本語 and ‘quotes’ — with dashes; 2.4 GHz Wi-Fi, 1,299.00 EUR.",
    "The robot vacuum supports 2.4 GHz networks only. " * 60,  # beyond 256 word pieces: truncated alike
    "a",
]


def test_numpy_encoder_matches_sentence_transformers(embedder: SentenceTransformerEmbedder) -> None:
    encoder = BertEncoder.load(resolve_embedder_path(BUNDLED_EMBEDDER))
    assert encoder is not None and encoder.dim == 384 and encoder.max_tokens == 256
    mine = encoder.encode(TEXTS)
    theirs = embedder.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert mine.dtype == np.float32 and mine.shape == theirs.shape
    assert np.all((mine * theirs).sum(1) > 0.9999), (mine * theirs).sum(1)
    # The embedder routes a small call through it, in the callers' order (it sorts by length inside).
    np.testing.assert_allclose(embedder.embed(TEXTS), theirs, atol=1e-4)


def test_gelu_is_the_exact_erf_form() -> None:
    from scipy.special import erf

    x = np.linspace(-12, 12, 100_001, dtype=np.float32)
    exact = 0.5 * x.astype(np.float64) * (1 + erf(x.astype(np.float64) / np.sqrt(2)))
    mine = _gelu(x)
    assert mine.dtype == np.float32
    np.testing.assert_allclose(mine, exact, rtol=0, atol=1e-6)


def test_a_text_reads_the_same_alone_and_in_a_batch_of_longer_ones() -> None:
    """States are computed on the real tokens only (packed): a short pair among long ones must not change."""
    encoder = BertEncoder.load(resolve_embedder_path(BUNDLED_EMBEDDER))
    assert encoder is not None
    pairs = [("What is the default?", "It is 4096."), ("Why?", TEXTS[3]), ("Which?", TEXTS[2])]
    together, mask, _ = encoder.states(pairs)
    for k, pair in enumerate(pairs):
        alone, alone_mask, _ = encoder.states([pair])
        n = int(alone_mask.sum())
        assert int(mask[k].sum()) == n
        np.testing.assert_allclose(together[k, :n], alone[0, :n], atol=1e-4)
        assert not together[k, n:].any()  # padded places are zeros, not another text's tokens


def test_query_vectors_are_kept_and_read_only(embedder: SentenceTransformerEmbedder) -> None:
    first = embedder.embed_query("How long is the warranty?")
    assert embedder.embed_query("How long is the warranty?") is first
    assert not first.flags.writeable  # a caller changing it in place would change every later search
    np.testing.assert_allclose(first, embedder.embed(["How long is the warranty?"])[0], atol=1e-6)


def test_models_of_another_shape_keep_sentence_transformers(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "modules.json").write_text('[{"type": "sentence_transformers.models.Transformer", "path": ""}]')
    (model / "config.json").write_text('{"model_type": "xlm-roberta"}')
    assert BertEncoder.load(model) is None
    assert BertEncoder.load("sentence-transformers/some-hub-id") is None


def test_switched_off_the_torch_model_answers(tmp_path: Path) -> None:
    off = SentenceTransformerEmbedder(EmbedderSettings(numpy_queries=False))
    off.warm_up()
    assert off._model is not None and off._numpy_encoder() is None


def test_a_cli_search_does_not_import_torch(tmp_path: Path) -> None:
    """`docqa search` / `ask` used to spend 4-6 s importing torch and sentence-transformers for a query."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "guide.md").write_text("# Setup\n\nConnect the base station to a wall socket before first use.\n")
    env = dict(os.environ, DOCQA_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    run = subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", "ingest", str(kb), "-c", "kb", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    probe = (
        "import sys\n"
        "from docqa.cli.main import main\n"
        "sys.argv = ['docqa', 'search', 'where do I plug the base station', '-c', 'kb', '--json']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "guide.md" in run.stdout and run.stdout.strip().endswith("NO-TORCH"), run.stdout
