"""The LoRA adapter registry: which adapters the model server publishes, under which names.

One JSON file, ``<adapters_dir>/registry.json``, written atomically under a file lock so that a
fine-tuning run registering its adapter and ``docqa model serve`` reading the list never see half a
file. The registry stores names and paths only; the adapter directory (peft's ``adapter_config.json``
and weights) stays where training wrote it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.settings import Settings

REGISTRY_FILE = "registry.json"
# vLLM's `--lora-modules name=path` and the OpenAI `model` field both carry the name: keep it plain.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def registry_path(settings: Settings) -> Path:
    return settings.adapters_dir / REGISTRY_FILE


def registered_adapters(settings: Settings) -> dict[str, Path]:
    """Name → adapter directory, in registration order; empty when nothing is registered."""
    return {name: Path(entry["path"]) for name, entry in _read(registry_path(settings)).items()}


def register_adapter(settings: Settings, name: str, path: Path | str) -> Path:
    """Publish the peft adapter at ``path`` as model ``name``; re-registering a name replaces it.

    Returns the absolute path stored. Raises ConfigError when the name is unusable or the directory
    is not a LoRA adapter the configured server could load.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"adapter name '{name}' is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if name == settings.model.served_name:
        raise ConfigError(f"adapter name '{name}' is the base model's served name; choose another.")
    adapter_dir = Path(path).expanduser().resolve()
    rank = adapter_rank(adapter_dir)
    if rank > settings.model.max_lora_rank:
        raise ConfigError(
            f"adapter '{name}' has LoRA rank {rank}, above the server's limit "
            f"{settings.model.max_lora_rank}; raise DOCQA_MODEL_MAX_LORA_RANK "
            "(vLLM accepts 8, 16, 32, 64, 128, 256, ...)."
        )
    with _locked(settings) as reg_file:
        entries = _read(reg_file)
        entries[name] = {
            "path": str(adapter_dir),
            "registered": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write(reg_file, entries)
    return adapter_dir


def unregister_adapter(settings: Settings, name: str) -> None:
    """Stop publishing ``name``; the adapter's files are left alone."""
    with _locked(settings) as reg_file:
        entries = _read(reg_file)
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise ConfigError(f"no adapter named '{name}' is registered (registered: {known}).")
        del entries[name]
        _write(reg_file, entries)


def adapter_rank(adapter_dir: Path) -> int:
    config_file = adapter_dir / "adapter_config.json"
    if not config_file.is_file():
        raise ConfigError(f"{adapter_dir} is not a LoRA adapter directory: it has no adapter_config.json.")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{config_file} is not valid JSON: {exc}") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise ConfigError(f"{adapter_dir} holds a {config.get('peft_type')} adapter; only LoRA is served.")
    if config.get("modules_to_save"):
        # vLLM refuses adapters that carry full copies of modules; fail here rather than at serve time.
        raise ConfigError(f"{adapter_dir}: adapters with modules_to_save cannot be served by vLLM.")
    return int(config.get("r", 8))


def adapter_mismatch(adapter_dir: Path, checkpoint: Path) -> str | None:
    """Why the adapter cannot sit on this base model (its q_proj input width is not the base's hidden
    size: it was trained for another model), or None. Reads tensor shapes only, not the weights."""
    from safetensors import safe_open

    weights = adapter_dir / "adapter_model.safetensors"
    config_file = checkpoint / "config.json"
    if not weights.is_file() or not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    hidden = config.get("hidden_size") or config.get("text_config", {}).get("hidden_size")
    with safe_open(str(weights), framework="pt") as f:
        key = next((k for k in f.keys() if "q_proj.lora_A" in k), None)  # noqa: SIM118 (not a dict)
        width = f.get_slice(key).get_shape()[-1] if key else None
    if hidden and width and width != hidden:
        return f"it was trained for a model {width} wide; the served model is {hidden} wide"
    return None


def _read(reg_file: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(reg_file.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the adapter registry {reg_file} is corrupt ({exc}); fix or delete it.") from exc
    adapters = data.get("adapters", {}) if isinstance(data, dict) else None
    if not isinstance(adapters, dict):
        raise ConfigError(f"the adapter registry {reg_file} has an unexpected shape; fix or delete it.")
    return adapters


def _write(reg_file: Path, entries: dict[str, dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=reg_file.parent, prefix=".registry-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": 1, "adapters": entries}, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, reg_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[Path]:
    """Serialise read-modify-write cycles across processes."""
    settings.adapters_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.adapters_dir / ".registry.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield registry_path(settings)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
