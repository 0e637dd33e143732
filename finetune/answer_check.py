"""Training the learned answer check (rag/answer_check.py) from the tune half of squad-dev.

Reads top to bottom: build labelled pairs, fine-tune the bundled MiniLM with two heads, measure on articles
it never saw, save what changed.

The pairs teach what verification by words cannot see. For each question of a tune article, the sentence
holding the gold answer (with the answer's characters, for the reading head) against two other sentences of
its paragraph and two of the same article's other paragraphs that share most of its words (on topic, yet no
answer: what a manual's neighbouring section looks like).

Two tune articles are kept out of training to choose the thresholds the pipeline uses and to report the
check's accuracy; the test half of squad-dev is never read here.

    python -m finetune.answer_check --squad ../shared/eval/squad-dev/squad.json --out rag/models/answer-check
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.answer_check import CONFIG_FILE, WEIGHTS_FILE, sentence_pair
from rag.embedder import resolve_embedder_path
from rag.evaluation.datasets import article_split
from rag.evaluation.metrics import normalize_answer
from rag.lexical import tokenize
from rag.sentences import sentence_spans
from rag.settings import BUNDLED_EMBEDDER


@dataclass(frozen=True)
class Pair:
    a: str  # the question
    b: str  # a sentence
    label: int  # 1: it holds the answer
    article: str
    answer: tuple[int, int] | None = None  # the gold answer's characters in ``b`` (positives): the reading head


def _holds(text: str, answers: Iterable[str]) -> bool:
    hay = f" {normalize_answer(text)} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in hay for g in answers)


def _overlap(question: str, text: str) -> float:
    q = set(tokenize(question))
    return len(q & set(tokenize(text))) / max(len(q), 1)


def pairs_for_article(article: dict, rng: random.Random, near_negs: int = 2, far_negs: int = 2) -> list[Pair]:
    title = article["title"]
    paragraphs = []
    for para in article["paragraphs"]:
        context = para["context"]
        spans = sentence_spans(context, 3)
        paragraphs.append((context, spans, [context[a:b] for a, b in spans]))
    out: list[Pair] = []
    for pi, para in enumerate(article["paragraphs"]):
        context, spans, sentences = paragraphs[pi]
        for qa in para["qas"]:
            q = qa["question"]
            golds = list(dict.fromkeys(a["text"] for a in qa["answers"]))
            start = qa["answers"][0]["answer_start"]
            end = start + len(qa["answers"][0]["text"])
            gold_i = next((i for i, (a, b) in enumerate(spans) if a <= start and end <= b), None)
            if gold_i is None:
                continue  # an answer across two sentences: no sentence holds it
            # The gold sentence, with where the answer stands in it (for the reading head).
            offset = spans[gold_i][0]
            out.append(Pair(*sentence_pair(q, sentences[gold_i]), 1, title, (start - offset, end - offset)))
            near = [s for i, s in enumerate(sentences) if i != gold_i and not _holds(s, golds)]
            far = [s for j, (_, _, ss) in enumerate(paragraphs) if j != pi for s in ss if not _holds(s, golds)]
            for pool, n in ((near, near_negs), (far, far_negs)):
                pool.sort(key=lambda s: -_overlap(q, s))
                out.extend(Pair(*sentence_pair(q, s), 0, title) for s in pool[:n])
    return out


def build_pairs(squad_file: Path, seed: int = 0, calibration_articles: int = 2) -> tuple[list[Pair], list[Pair]]:
    """(train, calibration) pairs from the tune half; the calibration articles are the last of the tune half."""
    data = json.loads(squad_file.read_text(encoding="utf-8"))["data"]
    tune, _test = article_split([a["title"] for a in data], seed)
    calibration = set(tune[-calibration_articles:])
    rng = random.Random(seed)
    train, held = [], []
    for article in data:
        if article["title"] not in tune:
            continue
        pairs = pairs_for_article(article, rng)
        (held if article["title"] in calibration else train).extend(pairs)
    rng.shuffle(train)
    return train, held


def train(pairs: list[Pair], held: list[Pair], out: Path, *, epochs: float = 1.0, batch_size: int = 32,
          lr: float = 5e-5, max_seq_length: int = 128, threads: int | None = None, frozen_layers: int = 2,
          init: Path | None = None) -> dict:
    """Fine-tune the encoder with two heads on one input, (question, sentence): ``head`` (mean-pooled states
    -> does the sentence hold the answer) and ``qa`` (each token -> start and end of the answer). ``init``:
    a check saved earlier, to go on from."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer, BertModel

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = resolve_embedder_path(BUNDLED_EMBEDDER)
    tokenizer = AutoTokenizer.from_pretrained(base)
    bert = BertModel.from_pretrained(base, add_pooling_layer=False)
    head = torch.nn.Linear(bert.config.hidden_size, 1)
    qa = torch.nn.Linear(bert.config.hidden_size, 2)
    if init is not None:
        state = {k: v.float() for k, v in load_file(str(init / WEIGHTS_FILE)).items()}
        head.load_state_dict({"weight": state.pop("head.weight"), "bias": state.pop("head.bias")})
        if "qa.weight" in state:
            qa.load_state_dict({"weight": state.pop("qa.weight"), "bias": state.pop("qa.bias")})
        bert.load_state_dict(state, strict=False)
    # The embeddings and the lowest layers stay the embedder's own (read from its package at load time): only
    # what training changes ships, and a backward pass through fewer layers is cheaper on a CPU.
    for p in bert.embeddings.parameters():
        p.requires_grad = False
    for layer in bert.encoder.layer[:frozen_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    params = [p for p in bert.parameters() if p.requires_grad] + list(head.parameters()) + list(qa.parameters())
    steps = max(1, int(len(pairs) * epochs / batch_size))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )

    def forward(batch: list[Pair]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
        enc = tokenizer([p.a for p in batch], [p.b for p in batch], truncation=True, max_length=max_seq_length,
                        padding=True, return_tensors="pt", return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")
        hidden = bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        spans = qa(hidden)  # (batch, length, 2)
        in_b = torch.tensor([[sid == 1 for sid in enc.sequence_ids(i)] for i in range(len(batch))])
        start, end = (spans[..., k].masked_fill(~in_b, -1e4) for k in (0, 1))
        targets = [_token_span(offsets[i].tolist(), enc.sequence_ids(i), p.answer) for i, p in enumerate(batch)]
        return head(pooled).squeeze(-1), start, end, targets

    bert.train()
    t0 = time.time()
    losses = []
    for step in range(steps):
        i = (step * batch_size) % len(pairs)
        batch = pairs[i : i + batch_size] or pairs[:batch_size]
        y = torch.tensor([float(p.label) for p in batch])
        logit, start, end, targets = forward(batch)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        rows = [k for k, t in enumerate(targets) if t is not None]
        if rows:
            ts = torch.tensor([targets[k][0] for k in rows])
            te = torch.tensor([targets[k][1] for k in rows])
            loss = loss + 0.5 * (torch.nn.functional.cross_entropy(start[rows], ts)
                                 + torch.nn.functional.cross_entropy(end[rows], te))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if step % 20 == 0 or step == steps - 1:
            recent = sum(losses[-50:]) / len(losses[-50:])
            print(f"step {step + 1}/{steps} loss {recent:.4f} {time.time() - t0:.0f}s", flush=True)
    bert.eval()
    scores, found = [], []
    with torch.no_grad():
        for i in range(0, len(held), 64):
            batch = held[i : i + 64]
            logit, start, end, targets = forward(batch)
            scores.extend(torch.sigmoid(logit).tolist())
            for k, t in enumerate(targets):
                if t is not None:  # the reader's best span against the gold one, in tokens
                    s_, e_ = int(start[k].argmax()), int(end[k].argmax())
                    found.append((s_, e_) == t)
    rows = [(sc, p.label) for sc, p in zip(scores, held, strict=True)]
    metrics = {
        "train_pairs": len(pairs), "steps": steps, "seconds": round(time.time() - t0, 1),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "calibration_pairs": len(rows),
        "calibration_sentence_accuracy": round(sum((sc >= 0.5) == bool(y) for sc, y in rows) / len(rows), 4),
        "calibration_sentence_auc": round(_auc(rows), 4),
        "calibration_reader_exact": round(sum(found) / max(len(found), 1), 4),
    }
    out.mkdir(parents=True, exist_ok=True)
    kept = {f"encoder.layer.{i}." for i in range(frozen_layers)}
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in bert.state_dict().items()
             if not k.startswith("embeddings.") and not any(k.startswith(f) for f in kept)}
    for name, module in (("head", head), ("qa", qa)):
        state[f"{name}.weight"] = module.weight.detach().to(torch.float16).contiguous()
        state[f"{name}.bias"] = module.bias.detach().to(torch.float16).contiguous()
    save_file(state, str(out / WEIGHTS_FILE))
    config = {"base": BUNDLED_EMBEDDER, "max_seq_length": max_seq_length, "epochs": epochs, "lr": lr,
              "batch_size": batch_size, "frozen_layers": frozen_layers, "metrics": metrics}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    return metrics


def _token_span(offsets: list, sequence_ids: list, answer: tuple[int, int] | None) -> tuple[int, int] | None:
    """The first and last token of the sentence that cover the answer's characters (None: no answer, or cut
    off by truncation)."""
    if answer is None:
        return None
    a, b = answer
    tokens = [i for i, (sid, (x, y)) in enumerate(zip(sequence_ids, offsets, strict=True))
              if sid == 1 and y > a and x < b]
    return (tokens[0], tokens[-1]) if tokens else None


def _auc(rows: list[tuple[float, int]]) -> float:
    pos = [s for s, y in rows if y]
    neg = [s for s, y in rows if not y]
    if not pos or not neg:
        return 0.0
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--init", type=Path, default=None, help="a check saved earlier, to go on from")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N pairs (a smoke run)")
    args = parser.parse_args()
    pairs, held = build_pairs(args.squad)
    held = random.Random(1).sample(held, min(len(held), 2000))  # enough to measure, cheap to score
    if args.limit:
        pairs = pairs[: args.limit]
    print(f"{len(pairs)} training pairs ({sum(p.label for p in pairs)} hold the answer), {len(held)} calibration",
          flush=True)
    metrics = train(pairs, held, args.out, epochs=args.epochs, threads=args.threads, init=args.init)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
