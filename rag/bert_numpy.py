"""A BERT sentence encoder in numpy, for queries: the same vectors as sentence-transformers, no torch.

Importing torch and sentence-transformers and building the model takes 4-6 s on this CPU, which every
``docqa search`` / ``docqa ask`` call paid before answering a one-line query. A question is a few dozen
word pieces; six small transformer layers in numpy encode it in milliseconds, from the same
``model.safetensors`` and ``tokenizer.json``. Only the shape sentence-transformers' all-MiniLM family
has is supported (a BERT encoder, mean pooling, L2 normalisation; see ``load``); any other model keeps
using sentence-transformers. Agreement with sentence-transformers is checked by a test (cosine > 0.9999).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_NORMALIZE = "sentence_transformers.models.Normalize"
_POOLING = "sentence_transformers.models.Pooling"
_TRANSFORMER = "sentence_transformers.models.Transformer"


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU BERT uses."""
    from scipy.special import erf  # a C ufunc; scipy is already loaded by the BM25 index

    return 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


@dataclass
class BertEncoder:
    """Mean-pooled, normalised BERT embeddings; ``load`` returns None for models of another shape."""

    weights: dict[str, np.ndarray]
    tokenizer: object  # tokenizers.Tokenizer
    layers: int
    heads: int
    eps: float
    max_tokens: int

    @property
    def dim(self) -> int:
        return int(self.weights["embeddings.word_embeddings.weight"].shape[1])

    @classmethod
    def load(cls, path: str | Path, max_seq_length: int | None = None) -> BertEncoder | None:
        root = Path(path)
        try:
            modules = json.loads((root / "modules.json").read_text())
            config = json.loads((root / "config.json").read_text())
            types = [m["type"] for m in modules]
            pooling = json.loads((root / modules[1]["path"] / "config.json").read_text()) if len(modules) > 1 else {}
            st_config = json.loads((root / "sentence_bert_config.json").read_text())
        except (OSError, ValueError, KeyError, IndexError):
            return None  # a hub id or a layout this encoder does not know: sentence-transformers handles it
        other_pooling = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
        supported = (
            types == [_TRANSFORMER, _POOLING, _NORMALIZE]
            and config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and other_pooling == ["pooling_mode_mean_tokens"]
            and (root / "model.safetensors").is_file()
            and (root / "tokenizer.json").is_file()
        )
        if not supported:
            return None
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        weights = {k.removeprefix("bert."): v for k, v in load_file(str(root / "model.safetensors")).items()}
        if "embeddings.word_embeddings.weight" not in weights:
            return None
        max_tokens = int(max_seq_length or st_config.get("max_seq_length") or config["max_position_embeddings"])
        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        return cls(
            weights=weights,
            tokenizer=tokenizer,
            layers=int(config["num_hidden_layers"]),
            heads=int(config["num_attention_heads"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
            max_tokens=max_tokens,
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pooled = self.pool(texts)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled, dtype=np.float32)

    def pool(self, texts: list[str] | list[tuple[str, str]]) -> np.ndarray:
        """Mean-pooled last hidden states, not normalised, one row per text or (text, text) pair (a pair is
        encoded as BERT reads one: ``[CLS] a [SEP] b [SEP]`` with its segment ids, as a cross-encoder does)."""
        x, mask, _ = self.states(texts)
        return (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)

    def states(self, texts: list[str] | list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, list]:
        """The last hidden state of every token (batch, length, dim), the attention mask, and the tokenizer's
        encodings (their ``offsets`` and ``sequence_ids`` map tokens back to characters)."""
        encodings = self.tokenizer.encode_batch(texts)  # type: ignore[attr-defined]
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        w = self.weights
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        head_dim = self.dim // self.heads
        # Padded positions get a large negative score, as the attention mask does in the torch model.
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]

        def split(t: np.ndarray) -> np.ndarray:
            # Contiguous: numpy's stacked matmul uses BLAS only on contiguous operands (else a slow loop).
            return np.ascontiguousarray(t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3))

        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def linear(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                flat = t.reshape(batch * length, t.shape[-1])  # one 2-D BLAS call, not one per text
                out = flat @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out.reshape(batch, length, -1)

            q = split(linear(x, "attention.self.query"))
            k = split(linear(x, "attention.self.key"))
            v = split(linear(x, "attention.self.value"))
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / np.sqrt(np.float32(head_dim)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = scores / scores.sum(-1, keepdims=True)
            context = (attn @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dim)
            x = _layer_norm(
                linear(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            hidden = _gelu(linear(x, "intermediate.dense"))
            x = _layer_norm(
                linear(hidden, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        return x, mask, encodings
