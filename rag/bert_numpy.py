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


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - (a1 t + ... + a5 t^5) exp(-z^2), t = 1 / (1 + p z), z >= 0, with an
# absolute error under 1.5e-7, below float32's own rounding here. scipy's erf ufunc runs element by element: it took
# as long as all six matrix products of a layer together.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
_SQRT_HALF = np.float32(1 / np.sqrt(2.0))
_HALF = np.float32(0.5)


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU BERT uses, x * (1 + erf(x / sqrt 2)) / 2, in a few in-place vectorised passes."""
    z = np.abs(x)
    z *= _SQRT_HALF
    t = z * _ERF_P
    t += 1.0
    np.reciprocal(t, out=t)
    tail = _ERF_A[0] * t  # Horner's rule: the polynomial in t, times t
    for a in _ERF_A[1:]:
        tail += a
        tail *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z  # 1 - erf(|x| / sqrt 2)
    tail *= _HALF
    np.subtract(_HALF, tail, out=tail)  # erf(|x| / sqrt 2) / 2
    np.copysign(tail, x, out=tail)  # erf(x / sqrt 2) / 2
    tail += _HALF
    tail *= x
    return tail


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
        """The last hidden state of every token (batch, length, dim; zeros at padded places), the attention mask,
        and the tokenizer's encodings (their ``offsets`` and ``sequence_ids`` map tokens back to characters).

        Texts of a batch differ in length; all but the attention run on the real tokens only, packed into one
        matrix (a padded place never changes a real token's state: the mask hides it from attention), which
        for a check's eight candidates is a third less work than the padded batch."""
        encodings = self.tokenizer.encode_batch(texts)  # type: ignore[attr-defined]
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        w = self.weights
        batch, length = ids.shape
        real = np.flatnonzero(mask.reshape(-1))  # places of the real tokens in the flattened batch
        positions = np.broadcast_to(np.arange(length), (batch, length)).reshape(-1)[real]
        x = (
            w["embeddings.word_embeddings.weight"][ids.reshape(-1)[real]]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][types.reshape(-1)[real]]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        head_dim = self.dim // self.heads
        # Padded positions get a large negative score, as the attention mask does in the torch model.
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1 / np.sqrt(head_dim))

        def heads(t: np.ndarray) -> np.ndarray:
            # Padded (batch, heads, length, head_dim), contiguous: numpy's stacked matmul uses BLAS only on
            # contiguous operands (else a slow loop).
            padded = np.zeros((batch * length, self.dim), dtype=np.float32)
            padded[real] = t
            return np.ascontiguousarray(padded.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3))

        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def linear(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]  # one 2-D BLAS call for the batch

            q = heads(linear(x, "attention.self.query"))
            k = heads(linear(x, "attention.self.key"))
            v = heads(linear(x, "attention.self.value"))
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = scores / scores.sum(-1, keepdims=True)
            context = (attn @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.dim)[real]
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
        states = np.zeros((batch * length, self.dim), dtype=np.float32)
        states[real] = x
        return states.reshape(batch, length, self.dim), mask, encodings
