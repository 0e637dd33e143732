"""Generators: the chat model behind one small protocol, chosen by ``settings.llm.backend``.

``OpenAIGenerator`` talks to any OpenAI-compatible server (the vLLM one ``docqa model serve``
starts); ``TransformersGenerator`` runs the same prepared checkpoint in-process, for machines
without vLLM. Importing this module is cheap: openai, torch and transformers load on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.checkpoints import resolve_checkpoint
from rag.errors import ConfigError, GenerationError, MissingDependencyError, ModelServerError
from rag.settings import LLMSettings, Settings

if TYPE_CHECKING:
    import openai

START_HINT = "Start it with `docqa model serve` (or `make serve-model`)"


@runtime_checkable
class Generator(Protocol):
    model_name: str

    def chat(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        """The whole reply to ``messages`` (OpenAI chat format); ``model`` may name a LoRA adapter."""
        ...

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """The reply as text deltas; closing the iterator stops generation."""
        ...

    def models(self) -> list[str]:
        """Names this generator answers to: the base model, then the adapters."""
        ...

    def check(self) -> None:
        """Raise ModelServerError, saying how to fix it, when generation cannot work."""
        ...


def build_generator(settings: Settings) -> Generator:
    """The generator ``settings.llm.backend`` names; never another one as a silent fallback."""
    backend = settings.llm.backend
    if backend == "openai":
        return OpenAIGenerator(settings.llm, settings.model.served_name)
    if backend == "transformers":
        return TransformersGenerator(settings)
    raise ConfigError(
        f"unknown generator backend '{backend}' (DOCQA_LLM_BACKEND): use 'openai' or 'transformers'."
    )


def _chat_model_dir(settings: Settings, served_root: str | None) -> Path:
    path = resolve_checkpoint(settings)
    if not (path / "config.json").is_file() and served_root and (Path(served_root) / "config.json").is_file():
        path = Path(served_root)
    if not (path / "config.json").is_file():
        raise ConfigError(f"the chat model is not prepared ({path}); run `docqa model prepare`.")
    return path


def load_chat_tokenizer(settings: Settings, served_root: str | None = None) -> Any:
    """The chat model's tokenizer: from the prepared checkpoint, else from the directory the model
    server reports it loaded (``served_root``: another DOCQA_DATA_DIR's checkpoint, say), when this
    machine can read it."""
    path = _chat_model_dir(settings, served_root)
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError(
            f"the chat tokenizer needs transformers: `pip install transformers` ({exc})"
        ) from exc
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the chat tokenizer from {path}: {exc}") from exc


def chat_token_counter(settings: Settings, served_root: str | None = None) -> Callable[[str], int]:
    """Counts the chat model's tokens in a text (no special tokens), for sizing prompts.

    From the checkpoint's ``tokenizer.json`` with the ``tokenizers`` library where there is one (the same
    counts as transformers' fast tokenizer, without importing transformers: a CLI question starts in
    about a second), else through ``load_chat_tokenizer``."""
    path = _chat_model_dir(settings, served_root)
    if (path / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        try:
            fast = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a plain Exception on a bad file
            raise ConfigError(f"cannot load the chat tokenizer from {path / 'tokenizer.json'}: {exc}") from exc
        fast.no_truncation()
        return lambda text: len(fast.encode(text, add_special_tokens=False).ids)
    tokenizer = load_chat_tokenizer(settings, served_root)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


# --------------------------------------------------------------------------- OpenAI-compatible HTTP


class OpenAIGenerator:
    """Chat completions over HTTP. The API key is read from the variable ``llm.api_key_env`` names,
    when the client is first built, and never stored in settings or logged."""

    def __init__(self, llm: LLMSettings, default_model: str) -> None:
        self.llm = llm
        self.model_name = llm.model or default_model
        self.base_url = llm.base_url.rstrip("/")
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def _get_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                import httpx
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=os.environ.get(self.llm.api_key_env) or "EMPTY",
                    timeout=httpx.Timeout(self.llm.timeout_s, connect=self.llm.connect_timeout_s),
                    max_retries=self.llm.max_retries,
                )
            return self._client

    def _params(
        self, model: str | None, max_tokens: int | None, temperature: float | None, stop: list[str] | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": model or self.model_name,
            "max_tokens": self.llm.max_tokens if max_tokens is None else max_tokens,
            "temperature": self.llm.temperature if temperature is None else temperature,
            "seed": self.llm.seed,
            "frequency_penalty": self.llm.frequency_penalty,
        }
        if stop:
            params["stop"] = stop
        return params

    def chat(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        client = self._get_client()
        params = self._params(model, max_tokens, temperature, stop)
        try:
            response = client.chat.completions.create(messages=messages, **params)  # type: ignore[arg-type]
        except _client_errors() as exc:
            raise self._translate(exc, params["model"]) from exc
        return response.choices[0].message.content or ""

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        client = self._get_client()
        params = self._params(model, max_tokens, temperature, stop)
        try:
            response = client.chat.completions.create(
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                **params,
            )
        except _client_errors() as exc:
            raise self._translate(exc, params["model"]) from exc
        try:
            for chunk in response:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except _client_errors() as exc:  # the server died, or the connection dropped, mid-answer
            raise self._translate(exc, params["model"], mid_answer=True) from exc
        finally:
            response.close()  # a consumer that stops early frees the server's slot

    def models(self) -> list[str]:
        try:
            return [m.id for m in self._get_client().models.list()]
        except _client_errors() as exc:
            raise self._translate(exc, None) from exc

    def served_root(self) -> str | None:
        """Where the server loaded the base model from (vLLM's ``root``), or None if it does not say."""
        try:
            served = self._get_client().with_options(max_retries=0).models.list()
        except _client_errors():
            return None
        card = next((m for m in served if m.id == self.model_name), None)
        root = getattr(card, "root", None) if card is not None else None
        return root if isinstance(root, str) else None

    def check(self) -> None:
        """One quick request, no retries: a stopped server is reported in about a second."""
        client = self._get_client().with_options(max_retries=0, timeout=max(self.llm.connect_timeout_s, 5.0))
        try:
            served = [m.id for m in client.models.list()]
        except _client_errors() as exc:
            raise self._translate(exc, None) from exc
        if self.model_name not in served:
            raise ModelServerError(
                f"the model server at {self.base_url} does not serve '{self.model_name}' "
                f"(it serves: {', '.join(served) or 'nothing'}); "
                "check DOCQA_LLM_MODEL / DOCQA_MODEL_SERVED_NAME."
            )

    def _translate(self, exc: Exception, model: str | None, *, mid_answer: bool = False) -> Exception:
        """openai's (and httpx's) exceptions → docqa's. ``mid_answer``: the server had answered and
        was streaming, so it is not "unreachable": the connection broke, and its log will say why."""
        import httpx
        import openai

        if mid_answer and isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            timed_out = isinstance(exc, openai.APITimeoutError | httpx.TimeoutException)
            kind = "stopped sending" if timed_out else "closed the connection"
            return ModelServerError(
                f"the model server at {self.base_url} {kind} in the middle of an answer ({exc}); the answer is "
                "incomplete. The model server's log says why (`docqa model serve` writes it under DATA_DIR/logs/)."
            )
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):  # includes timeouts
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "is unreachable"
            return ModelServerError(f"the model server at {self.base_url} {kind} ({exc}). {START_HINT}.")
        if isinstance(exc, openai.NotFoundError) and model is not None:
            return ModelServerError(
                f"the model server at {self.base_url} does not serve '{model}': {_api_message(exc)}"
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ModelServerError(
                f"the model server at {self.base_url} refused the API key ({_api_message(exc)}); "
                f"set it in ${self.llm.api_key_env}."
            )
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            return GenerationError(f"the model server rejected the request: {_api_message(exc)}")
        if isinstance(exc, openai.APIStatusError):
            return ModelServerError(
                f"the model server at {self.base_url} answered {exc.status_code}: {_api_message(exc)}"
            )
        return GenerationError(f"generation failed: {exc}")


def _client_errors() -> tuple[type[Exception], ...]:
    """The exceptions the OpenAI client raises (imported late, like the client)."""
    import httpx
    import openai

    return (openai.OpenAIError, httpx.HTTPError)


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(exc)


# --------------------------------------------------------------------------- in-process transformers


class TransformersGenerator:
    """The prepared checkpoint run in this process, with registered LoRA adapters applied by peft.

    ``__init__`` is cheap; ``warm_up()`` loads the model (safe to call twice). One generation runs at
    a time (a lock): the model and its active adapter are shared state.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_name = settings.llm_model_name
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._loaded_adapters: set[str] = set()
        self.device = "cpu"

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                import torch
                from transformers import AutoModelForCausalLM
            except ImportError as exc:
                raise MissingDependencyError(
                    f"the transformers backend needs torch and transformers: `make venv` ({exc})"
                ) from exc
            tokenizer = load_chat_tokenizer(self.settings)

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
            # float32 on CPU: bfloat16 matmuls are emulated (slower) on CPUs without AVX512-BF16/AMX.
            dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
            model = AutoModelForCausalLM.from_pretrained(resolve_checkpoint(self.settings), dtype=dtype)
            self._model = model.to(self.device).eval()
            self._tokenizer = tokenizer

    def models(self) -> list[str]:
        from rag.adapters import registered_adapters

        return [self.model_name, *registered_adapters(self.settings)]

    def check(self) -> None:
        path = resolve_checkpoint(self.settings)
        if not (path / "config.json").is_file():
            raise ModelServerError(f"the chat model is not prepared ({path}); run `docqa model prepare`.")

    def chat(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        return "".join(
            self.stream(messages, model=model, max_tokens=max_tokens, temperature=temperature, stop=stop)
        )

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        self.warm_up()
        from transformers import TextIteratorStreamer

        adapter = self._adapter_for(model)
        cancel = threading.Event()
        streamer = TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=None
        )
        failure: list[BaseException] = []
        worker = threading.Thread(
            target=self._generate,
            args=(messages, adapter, max_tokens, temperature, streamer, cancel, failure),
            name="docqa-generate",
            daemon=True,
        )
        worker.start()
        trimmer = _StopTrimmer(stop or [])
        try:
            for piece in streamer:
                text, done = trimmer.feed(piece)
                if text:
                    yield text
                if done:
                    break
            else:
                tail = trimmer.flush()
                if tail:
                    yield tail
        finally:
            cancel.set()  # a consumer that stops early (or a stop string) ends generation at the next token
            worker.join()
        if failure:
            raise GenerationError(f"in-process generation failed: {failure[0]}") from failure[0]

    def _adapter_for(self, model: str | None) -> tuple[str, Path] | None:
        if model is None or model == self.model_name:
            return None
        from rag.adapters import registered_adapters

        adapters = registered_adapters(self.settings)
        if model not in adapters:
            known = ", ".join([self.model_name, *adapters])
            raise ModelServerError(f"model '{model}' is not served; available: {known}.")
        return model, adapters[model]

    def _generate(
        self,
        messages: list[dict],
        adapter: tuple[str, Path] | None,
        max_tokens: int | None,
        temperature: float | None,
        streamer: Any,
        cancel: threading.Event,
        failure: list[BaseException],
    ) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full(
                    (input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device
                )

        llm = self.settings.llm
        temperature = llm.temperature if temperature is None else temperature
        try:
            with self._lock:
                model = self._select_adapter(adapter)
                inputs = self._tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                ).to(self.device)
                sampling: dict[str, Any] = {"do_sample": False}
                if temperature > 0:
                    torch.manual_seed(llm.seed)
                    sampling = {"do_sample": True, "temperature": temperature}
                with torch.inference_mode():
                    model.generate(
                        **inputs,
                        **sampling,
                        max_new_tokens=llm.max_tokens if max_tokens is None else max_tokens,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                    )
        except BaseException as exc:  # handed to the consuming thread, which raises it
            failure.append(exc)
            streamer.end()

    def _select_adapter(self, adapter: tuple[str, Path] | None) -> Any:
        """The model to call, with ``adapter`` active (or every adapter off). Called under the lock."""
        from contextlib import suppress

        if adapter is None:
            if self._loaded_adapters:
                with suppress(ValueError):
                    self._model.base_model.disable_adapter_layers()
            return self._model
        name, path = adapter
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise MissingDependencyError(
                "serving LoRA adapters in-process needs peft: `pip install peft`"
            ) from exc
        if not self._loaded_adapters:
            self._model = PeftModel.from_pretrained(self._model, path, adapter_name=name).eval()
        elif name not in self._loaded_adapters:
            self._model.load_adapter(path, adapter_name=name)
        self._loaded_adapters.add(name)
        self._model.base_model.enable_adapter_layers()
        self._model.set_adapter(name)
        return self._model


class _StopTrimmer:
    """Cuts a stream at the first stop string, OpenAI-style (the stop string itself is not emitted),
    holding back only as many characters as could be the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        if not self.stops:
            return piece, False
        self.buffer += piece
        cut = min((i for i in (self.buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            text, self.buffer = self.buffer[:cut], ""
            return text, True
        safe = len(self.buffer) - self.hold
        if safe <= 0:
            return "", False
        text, self.buffer = self.buffer[:safe], self.buffer[safe:]
        return text, False

    def flush(self) -> str:
        text, self.buffer = self.buffer, ""
        return text
