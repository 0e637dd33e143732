"""Generators: the chat model behind one small protocol, chosen by ``settings.llm.backend``.

``OpenAIGenerator`` talks to any OpenAI-compatible server (the vLLM one ``docqa model serve``
starts); ``TransformersGenerator`` runs the same prepared checkpoint in-process, for machines
without vLLM. Importing this module is cheap: openai, torch and transformers load on first use.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.checkpoints import resolve_checkpoint
from rag.endpoints import EndpointPool
from rag.errors import ConfigError, DocqaError, GenerationError, MissingDependencyError, ModelServerError
from rag.settings import LLMSettings, Settings
from rag.timing import ModelCall

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
        call: ModelCall | None = None,
    ) -> str:
        """The whole reply to ``messages`` (OpenAI chat format); ``model`` may name a LoRA adapter. ``call``,
        when given, is filled with the call's figures (token counts, time) and ended (so for every method)."""
        ...

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        call: ModelCall | None = None,
    ) -> Iterator[str]:
        """The reply as text deltas; closing the iterator stops generation. ``call``'s time to first token is
        the first delta's arrival."""
        ...

    def alternatives(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        k: int = 3,
        call: ModelCall | None = None,
    ) -> list[str]:
        """Up to ``k`` other replies, most likely first: each starts with one of the model's next most likely
        first tokens after the greedy one and continues greedily. A small model's second choice of where to
        start is often the span it missed; the caller checks each one."""
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
        return OpenAIGenerator(settings.llm, settings.model.served_name, or_serves=[settings.answer.adapter])
    if backend == "transformers":
        return TransformersGenerator(settings)
    raise ConfigError(f"unknown generator backend '{backend}' (DOCQA_LLM_BACKEND): use 'openai' or 'transformers'.")


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
    """Chat completions over HTTP, to one endpoint or spread over several (``llm.endpoints``).

    With several, each request goes to the least busy endpoint that is not marked down; one that is refused,
    times out or answers 5xx before the first token is marked down (``llm.endpoint_retry_s``) and the
    request moves on to the next. A stream that has produced text stays where it is: a failure after
    that is reported, never silently continued elsewhere (the answer would repeat). The API key is read
    from the variable ``llm.api_key_env`` names, when a client is first built, and never stored or logged.
    """

    def __init__(
        self,
        llm: LLMSettings,
        default_model: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        or_serves: Sequence[str] = (),
    ) -> None:
        """``or_serves``: names an endpoint may serve instead of the base model and still pass ``check``: the
        grounded adapter, which a server that has it merged into the base weights publishes alone."""
        self.llm = llm
        self.model_name = llm.model or default_model
        self.or_serves = tuple(n for n in or_serves if n)
        self.endpoints = llm.endpoints
        self.base_url = self.endpoints[0]
        self.pool = EndpointPool(self.endpoints, llm.endpoint_retry_s, clock)
        self._clients: dict[str, openai.OpenAI] = {}
        self._lock = threading.Lock()

    def _get_client(self, url: str | None = None) -> openai.OpenAI:
        url = url or self.base_url
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                import httpx
                import openai

                client = openai.OpenAI(
                    base_url=url,
                    api_key=os.environ.get(self.llm.api_key_env) or "EMPTY",
                    timeout=httpx.Timeout(self.llm.timeout_s, connect=self.llm.connect_timeout_s),
                    # Several endpoints: the next endpoint is the retry.
                    max_retries=self.llm.max_retries if len(self.endpoints) == 1 else 0,
                )
                self._clients[url] = client
            return client

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

    def _call(self, request: Callable[[openai.OpenAI], Any], model: str | None, **options: Any) -> Any:
        """``request(client)`` on the first endpoint that answers; ``options`` go to ``with_options``."""
        failures: list[_Failure] = []
        for endpoint in self.pool.order():
            client = self._get_client(endpoint.url)
            if options:
                client = client.with_options(**options)
            self.pool.begin(endpoint)
            try:
                result = request(client)
            except _client_errors() as exc:
                if not _fails_over(exc):
                    raise self._translate(exc, model, endpoint.url) from exc
                self.pool.failed(endpoint)
                failures.append(_Failure(endpoint.url, exc))
                continue
            finally:
                self.pool.end(endpoint)
            self.pool.succeeded(endpoint)
            return result
        raise self._unavailable(failures, model) from failures[-1].exc

    def chat(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        call: ModelCall | None = None,
    ) -> str:
        params = self._params(model, max_tokens, temperature, stop)
        try:
            response = self._call(
                lambda client: client.chat.completions.create(messages=messages, **params),  # type: ignore[arg-type]
                params["model"],
            )
            _count_usage(call, response)
        finally:
            if call is not None:
                call.end()
        return response.choices[0].message.content or ""

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        call: ModelCall | None = None,
    ) -> Iterator[str]:
        try:
            yield from self._stream(messages, self._params(model, max_tokens, temperature, stop), call)
        finally:
            if call is not None:
                call.end()

    def _stream(self, messages: list[dict], params: dict[str, Any], call: ModelCall | None) -> Iterator[str]:
        if self.llm.stream_usage:
            # The token counts come in one last chunk without choices (vLLM, OpenAI).
            params = {**params, "stream_options": {"include_usage": True}}
        failures: list[_Failure] = []
        for endpoint in self.pool.order():
            client = self._get_client(endpoint.url)
            self.pool.begin(endpoint)
            response = None
            sent = False
            try:
                response = client.chat.completions.create(
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    **params,
                )
                for chunk in response:
                    if chunk.choices and chunk.choices[0].delta.content:
                        sent = True
                        if call is not None:
                            call.piece()
                        yield chunk.choices[0].delta.content
                    _count_usage(call, chunk)
            except _client_errors() as exc:
                if sent:  # the server died, or the connection dropped, mid-answer: not retried elsewhere
                    raise self._translate(exc, params["model"], endpoint.url, mid_answer=True) from exc
                if not _fails_over(exc):
                    raise self._translate(exc, params["model"], endpoint.url) from exc
                self.pool.failed(endpoint)  # nothing was said yet: the next endpoint answers instead
                failures.append(_Failure(endpoint.url, exc, mid_answer=response is not None))
                continue
            finally:
                if response is not None:
                    response.close()  # a consumer that stops early frees the server's slot
                self.pool.end(endpoint)
            self.pool.succeeded(endpoint)
            return
        raise self._unavailable(failures, params["model"]) from failures[-1].exc

    def alternatives(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        k: int = 3,
        call: ModelCall | None = None,
    ) -> list[str]:
        try:
            return self._alternatives(messages, self._params(model, max_tokens, 0.0, None), k, call)
        finally:
            if call is not None:
                call.end()

    def _alternatives(
        self, messages: list[dict], params: dict[str, Any], k: int, call: ModelCall | None
    ) -> list[str]:
        first = self._call(
            lambda client: client.chat.completions.create(
                messages=messages,  # type: ignore[arg-type]
                **{**params, "max_tokens": 1},
                logprobs=True,
                top_logprobs=min(3 * k + 1, 20),  # room for variants that are skipped; vLLM's cap is 20
            ),
            params["model"],
        )
        if call is not None:
            call.first_token()
        _count_usage(call, first)
        content = first.choices[0].logprobs.content if first.choices[0].logprobs else None
        if not content:
            return []
        ranked = sorted(content[0].top_logprobs, key=lambda t: -t.logprob)
        starts = _other_starts(content[0].token, [t.token for t in ranked], k)
        if not starts:
            return []
        # The server prefixes each reply with its first token and continues it (vLLM's
        # continue_final_message); the k requests go together, so the server batches them.
        continue_body = {"continue_final_message": True, "add_generation_prompt": False}

        def reply(start: str) -> str:
            response = self._call(
                lambda client: client.chat.completions.create(
                    messages=[*messages, {"role": "assistant", "content": start}],  # type: ignore[list-item]
                    **{**params, "max_tokens": max(params["max_tokens"] - 1, 1)},
                    extra_body=continue_body,
                ),
                params["model"],
            )
            _count_usage(call, response)
            return start + (response.choices[0].message.content or "")

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(starts), thread_name_prefix="docqa-alt") as pool:
            return list(pool.map(reply, starts))

    def models(self) -> list[str]:
        return self._call(lambda client: [m.id for m in client.models.list()], None)

    def served_root(self) -> str | None:
        """Where the server loaded the base model from (vLLM's ``root``), or None if it does not say."""
        try:
            served = self._call(lambda client: list(client.models.list()), None, max_retries=0)
        except DocqaError:
            return None
        card = next((m for m in served if m.id == self.model_name), None)
        root = getattr(card, "root", None) if card is not None else None
        return root if isinstance(root, str) else None

    def check(self) -> None:
        """One quick request to each endpoint, no retries (a stopped server is reported in about a second);
        passes when at least one serves the model, and marks the others down."""
        failures: list[_Failure] = []
        wrong: list[str] = []
        for endpoint in self.pool.order():
            client = self._get_client(endpoint.url).with_options(
                max_retries=0, timeout=max(self.llm.connect_timeout_s, 5.0)
            )
            try:
                served = [m.id for m in client.models.list()]
            except _client_errors() as exc:
                if not _fails_over(exc):
                    raise self._translate(exc, None, endpoint.url) from exc
                self.pool.failed(endpoint)
                failures.append(_Failure(endpoint.url, exc))
                continue
            self.pool.succeeded(endpoint)
            if any(name in served for name in (self.model_name, *self.or_serves)):
                return
            wrong.append(
                f"the model server at {endpoint.url} does not serve '{self.model_name}' "
                f"(it serves: {', '.join(served) or 'nothing'})"
            )
        if wrong:
            down = "".join(f"; {self._translate(f.exc, None, f.url)}" for f in failures)
            raise ModelServerError(f"{'; '.join(wrong)}{down}; check DOCQA_LLM_MODEL / DOCQA_MODEL_SERVED_NAME.")
        raise self._unavailable(failures, None) from failures[-1].exc

    def _unavailable(self, failures: list[_Failure], model: str | None) -> Exception:
        """The error when no endpoint answered: one endpoint's own, or every endpoint's in one message."""
        if len(failures) == 1:
            only = failures[0]
            return self._translate(only.exc, model, only.url, mid_answer=only.mid_answer)
        reasons = "; ".join(str(self._translate(f.exc, model, f.url, hint=False)) for f in failures)
        return ModelServerError(f"no model server answered ({reasons}). {START_HINT} on each (DOCQA_LLM_BASE_URLS).")

    def _translate(
        self, exc: Exception, model: str | None, url: str, *, mid_answer: bool = False, hint: bool = True
    ) -> Exception:
        """openai's (and httpx's) exceptions → docqa's. ``mid_answer``: the server had answered and
        was streaming, so it is not "unreachable": the connection broke, and its log will say why."""
        import httpx
        import openai

        if mid_answer and isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            timed_out = isinstance(exc, openai.APITimeoutError | httpx.TimeoutException)
            kind = "stopped sending" if timed_out else "closed the connection"
            return ModelServerError(
                f"the model server at {url} {kind} in the middle of an answer ({exc}); the answer is "
                "incomplete. The model server's log says why (`docqa model serve` writes it under DATA_DIR/logs/)."
            )
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):  # includes timeouts
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "is unreachable"
            return ModelServerError(f"the model server at {url} {kind} ({exc})" + (f". {START_HINT}." if hint else ""))
        if isinstance(exc, openai.NotFoundError) and model is not None:
            return ModelServerError(f"the model server at {url} does not serve '{model}': {_api_message(exc)}")
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ModelServerError(
                f"the model server at {url} refused the API key ({_api_message(exc)}); "
                f"set it in ${self.llm.api_key_env}."
            )
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            return GenerationError(f"the model server rejected the request: {_api_message(exc)}")
        if isinstance(exc, openai.APIStatusError):
            return ModelServerError(f"the model server at {url} answered {exc.status_code}: {_api_message(exc)}")
        return GenerationError(f"generation failed: {exc}")


def _count_usage(call: ModelCall | None, response: Any) -> None:
    """Add a response's (or a stream's last chunk's) token counts to ``call``, when the server gave them."""
    usage = getattr(response, "usage", None)
    if call is not None and usage is not None:
        call.usage(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None))


def _other_starts(greedy: str, ranked: list[str], k: int) -> list[str]:
    """The first tokens to branch from: the model's ranked candidates other than the greedy one, without
    blanks, broken UTF-8 pieces and case or space variants of one already taken."""
    seen = {greedy.strip().lower()}
    starts: list[str] = []
    for token in ranked:
        key = token.strip().lower()
        if not key or "\ufffd" in token or key in seen:
            continue
        seen.add(key)
        starts.append(token)
    return starts[:k]


@dataclass(frozen=True)
class _Failure:
    url: str
    exc: Exception
    mid_answer: bool = False  # it had started a (still empty) stream


def _fails_over(exc: Exception) -> bool:
    """Whether another endpoint should get the request: this one was refused, timed out, dropped the
    connection or answered 5xx. A 4xx is the request's fault and would fail anywhere."""
    import httpx
    import openai

    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


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
        call: ModelCall | None = None,
    ) -> str:
        return "".join(
            self.stream(messages, model=model, max_tokens=max_tokens, temperature=temperature, stop=stop, call=call)
        )

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        call: ModelCall | None = None,
    ) -> Iterator[str]:
        try:
            yield from self._stream(messages, model, max_tokens, temperature, stop, call)
        finally:
            if call is not None:
                call.end()

    def _stream(
        self,
        messages: list[dict],
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
        stop: list[str] | None,
        call: ModelCall | None,
    ) -> Iterator[str]:
        self.warm_up()
        from transformers import TextIteratorStreamer

        adapter = self._adapter_for(model)
        cancel = threading.Event()
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=None)
        failure: list[BaseException] = []
        worker = threading.Thread(
            target=self._generate,
            args=(messages, adapter, max_tokens, temperature, streamer, cancel, failure, call),
            name="docqa-generate",
            daemon=True,
        )
        worker.start()
        trimmer = _StopTrimmer(stop or [])
        try:
            for piece in streamer:
                text, done = trimmer.feed(piece)
                if text:
                    if call is not None:
                        call.first_token()
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

    def alternatives(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        k: int = 3,
        call: ModelCall | None = None,
    ) -> list[str]:
        try:
            return self._alternatives(messages, model, max_tokens, k, call)
        finally:
            if call is not None:
                call.end()

    def _alternatives(
        self, messages: list[dict], model: str | None, max_tokens: int | None, k: int, call: ModelCall | None
    ) -> list[str]:
        self.warm_up()
        import torch

        adapter = self._adapter_for(model)
        tokenizer = self._tokenizer
        limit = self.settings.llm.max_tokens if max_tokens is None else max_tokens
        with self._lock:
            llm = self._select_adapter(adapter)
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(self.device)
            with torch.inference_mode():
                logits = llm(**inputs).logits[0, -1]
                if call is not None:
                    call.first_token()
                ranked = torch.topk(logits, 3 * k + 1).indices.tolist()
                pieces = [tokenizer.decode([t]) for t in ranked]
                starts = _other_starts(pieces[0], pieces[1:], k)
                replies = []
                for start in starts:
                    ids = torch.cat(
                        [inputs["input_ids"], torch.tensor([[ranked[pieces.index(start)]]], device=self.device)], 1
                    )
                    out = llm.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        do_sample=False,
                        max_new_tokens=max(limit - 1, 1),
                        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                    )
                    prompt = inputs["input_ids"].shape[1]
                    if call is not None:
                        call.usage(prompt, out.shape[1] - prompt)
                    replies.append(tokenizer.decode(out[0, prompt:], skip_special_tokens=True))
        return replies

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
        call: ModelCall | None = None,
    ) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

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
                    out = model.generate(
                        **inputs,
                        **sampling,
                        max_new_tokens=llm.max_tokens if max_tokens is None else max_tokens,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                    )
                if call is not None:
                    prompt = inputs["input_ids"].shape[1]
                    call.usage(prompt, out.shape[1] - prompt)
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
            raise MissingDependencyError("serving LoRA adapters in-process needs peft: `pip install peft`") from exc
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
