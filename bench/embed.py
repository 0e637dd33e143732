"""Embedding speed-ups on the CPU against their cost in retrieval quality, on beir-msmarco-5k.

Variants of the bundled all-MiniLM-L6-v2, all in one run on the same texts:
- torch fp32: sentence-transformers as docqa runs it (the baseline);
- torch int8: PyTorch dynamic quantisation of the Linear layers (no extra package);
- onnxruntime fp32 and int8: the transformer exported with torch.onnx, run by onnxruntime, int8 by
  onnxruntime's dynamic quantisation; mean pooling and normalisation as in the model's own pipeline.

sentence-transformers' own ONNX/OpenVINO backends are not used: their extras (optimum, optimum-intel)
pin older sentence-transformers/transformers or pull a CUDA torch into the app environment.
Each variant embeds the 5,000 passages (throughput) and the judged queries, then exact search gives
nDCG@10 and recall@100, so the speed gain and the quality lost come from the same pass.

    python -m bench.embed            # BENCH_EMBED_DOCS=1000 for a quick run
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import Timer, write_results
from bench.corpus import EVAL_DIR
from rag.embedder import SentenceTransformerEmbedder
from rag.evaluation.datasets import doc_id_from_path, load_beir
from rag.evaluation.metrics import mean_scores, ranking_scores
from rag.settings import EmbedderSettings

Encode = Callable[[list[str]], np.ndarray]
BATCH = 64


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def torch_encoder(model) -> Encode:
    return lambda texts: _normalise(
        model.encode(texts, batch_size=BATCH, convert_to_numpy=True, show_progress_bar=False)
    )


def torch_int8(model) -> Encode:
    import torch

    quantised = copy.deepcopy(model)
    quantised[0].auto_model = torch.ao.quantization.quantize_dynamic(
        quantised[0].auto_model, {torch.nn.Linear}, dtype=torch.qint8
    )
    return torch_encoder(quantised)


def export_onnx(model, directory: Path) -> Path:
    import torch

    path = directory / "model.onnx"

    class Hidden(torch.nn.Module):
        """Keyword call into the transformer (its positional signature differs across versions)."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    wrapped = Hidden(model[0].auto_model).eval()
    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    names = ("input_ids", "attention_mask", "token_type_ids")
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            tuple(sample[n] for n in names),
            str(path),
            input_names=list(names),
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in names},
            opset_version=17,
            dynamo=False,
        )
    return path


def onnx_encoder(model, path: Path) -> Encode:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tokenizer, max_len = model.tokenizer, model.max_seq_length

    def encode(texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # batches of similar length, as ST does
        out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            idx = order[start : start + BATCH]
            enc = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="np"
            )
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            out[idx] = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return _normalise(out)

    return encode


def quantise_onnx(path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = path.with_name("model.int8.onnx")
    quantize_dynamic(str(path), str(target), weight_type=QuantType.QInt8)
    return target


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    limit = int(os.environ.get("BENCH_EMBED_DOCS", "0")) or None
    embedder = SentenceTransformerEmbedder(EmbedderSettings())
    model = embedder.model
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        evalset = load_beir(EVAL_DIR / "beir-msmarco-5k", work)
        ids = evalset.doc_ids[:limit] if limit else evalset.doc_ids
        id_text = {doc_id_from_path(str(p)): p.read_text(encoding="utf-8").strip() for p in evalset.docs_dir.iterdir()}
        texts = [id_text[i] for i in ids]
        # On a subset (BENCH_EMBED_DOCS) only the judged documents inside it count, so scores stay in [0, 1].
        kept = set(ids)
        queries = [q for q in evalset.queries if any(d in kept for d in q.relevance)]
        for q in queries:
            q.relevance = {d: r for d, r in q.relevance.items() if d in kept}
        onnx_path = export_onnx(model, work)
        variants: list[tuple[str, Callable[[], Encode]]] = [
            ("torch fp32 (default)", lambda: torch_encoder(model)),
            ("torch int8 dynamic", lambda: torch_int8(model)),
            ("onnxruntime fp32", lambda: onnx_encoder(model, onnx_path)),
            ("onnxruntime int8", lambda: onnx_encoder(model, quantise_onnx(onnx_path))),
        ]
        rows = []
        base_rate = None
        for name, make in variants:
            encode = make()
            encode(texts[:BATCH])  # warm-up: first-call allocations and thread pools
            with Timer() as t:
                doc_vecs = encode(texts)
            q_vecs = encode([q.text for q in queries])
            scores = q_vecs @ doc_vecs.T
            per_query = []
            for qi, q in enumerate(queries):
                top = np.argsort(-scores[qi])[:100]
                per_query.append(ranking_scores([ids[j] for j in top], q.relevance))
            metrics = mean_scores(per_query)
            rate = len(texts) / t.s
            base_rate = base_rate or rate
            rows.append(
                {
                    "variant": name,
                    "texts_per_s": round(rate, 1),
                    "speedup": round(rate / base_rate, 2),
                    "ndcg@10": round(metrics["ndcg@10"], 4),
                    "recall@100": round(metrics["recall@100"], 4),
                }
            )
            print(rows[-1], flush=True)
    notes = [
        f"{len(texts)} MS MARCO passages ({'first ' + str(limit) if limit else 'all'}), {len(queries)} judged "
        f"queries (judgements restricted to those passages), batch {BATCH}, exact search",
        "speedup against torch fp32 in the same run; the machine is shared, so ratios matter more than rates",
    ]
    write_results("embed", rows, command="make bench-embed", notes=notes)


if __name__ == "__main__":
    main()
