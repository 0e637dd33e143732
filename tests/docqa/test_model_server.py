"""Unit tests of the model server plumbing (argv, environment, process handling) and the adapter registry.

No vLLM here: process handling runs against a fake server script that speaks just enough of the
OpenAI API. The generators that talk to it are tested in ``tests/rag/test_generation.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from docqa.model_server import (
    ModelServer,
    cpu_has_bf16,
    cuda_visible,
    group_members,
    merged_adapter,
    ready_names,
    served_dtype,
    served_lora_rank,
    server_command,
    server_env,
    server_url,
)
from rag.adapters import register_adapter, registered_adapters, registry_path, unregister_adapter
from rag.checkpoints import resolve_checkpoint
from rag.errors import ConfigError, MissingDependencyError, ModelServerError
from rag.settings import Settings
from tests.helpers import REPO, free_port


def fake_adapter(root: Path, name: str = "a", rank: int = 8, **extra: object) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, **extra}))
    return path


class TestServerCommand:
    def test_base_model_argv(self, settings: Settings) -> None:
        argv = server_command(settings, {}, gpu=True)
        assert argv[:3] == [str(Path(".venv-vllm/bin/python")), "-m", "vllm.entrypoints.openai.api_server"]
        pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
        assert pairs["--model"] == str(settings.models_dir / "SmolLM2-135M-Instruct")
        assert pairs["--served-model-name"] == "docqa-base"
        assert pairs["--host"] == "127.0.0.1"
        assert pairs["--port"] == "8000"
        assert pairs["--max-model-len"] == "4096"
        assert pairs["--dtype"] == "auto"
        assert "--enable-lora" not in argv and "--lora-modules" not in argv

    def test_lora_flags_and_extra_args_last(self, settings: Settings, tmp_path: Path) -> None:
        s = settings.with_overrides(model__extra_args=["--enforce-eager", "--seed", "1"], model__max_loras=2)
        support, legal = fake_adapter(tmp_path, "support", 16), fake_adapter(tmp_path, "legal", 12)
        argv = server_command(s, {"support": support, "legal": legal}, gpu=True)
        i = argv.index("--enable-lora")
        # the smallest rank vLLM accepts that holds both, not the 64 ceiling (vLLM pads adapters to it)
        assert argv[i + 1 : i + 5] == ["--max-loras", "2", "--max-lora-rank", "16"]
        assert served_lora_rank({"a": fake_adapter(tmp_path, "a", 17)}) == 32
        j = argv.index("--lora-modules")
        assert argv[j + 1 : j + 3] == [f"support={tmp_path / 'support'}", f"legal={tmp_path / 'legal'}"]
        assert argv[-3:] == ["--enforce-eager", "--seed", "1"]

    def test_one_adapter_is_served_merged_alone_under_its_name(self, settings: Settings, tmp_path: Path) -> None:
        one, two = fake_adapter(tmp_path, "one"), fake_adapter(tmp_path, "two")
        assert merged_adapter(settings, {"docqa-grounded": one}) == ("docqa-grounded", one)
        assert merged_adapter(settings, {"docqa-grounded": one, "support": two}) is None  # the base must stay
        assert merged_adapter(settings, {}) is None
        assert merged_adapter(settings.with_overrides(model__merge_adapter=False), {"docqa-grounded": one}) is None
        merged = tmp_path / "merged"
        argv = server_command(settings, {"docqa-grounded": one}, gpu=False, merged=("docqa-grounded", merged))
        pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
        assert pairs["--model"] == str(merged) and pairs["--served-model-name"] == "docqa-grounded"
        assert "--enable-lora" not in argv and "--lora-modules" not in argv
        register_adapter(settings, "docqa-grounded", one)
        assert ready_names(settings) == ["docqa-base", "docqa-grounded"]  # what a ready local server may list
        register_adapter(settings, "support", two)
        assert ready_names(settings) == ["docqa-base"]

    def test_eager_on_cpu_unless_compilation_is_chosen(self, settings: Settings) -> None:
        assert server_command(settings, {}, gpu=False)[-1] == "--enforce-eager"
        assert "--enforce-eager" not in server_command(settings, {}, gpu=True)
        compiled = settings.with_overrides(model__extra_args=["-O3"])
        assert "--enforce-eager" not in server_command(compiled, {}, gpu=False)

    def test_parallel_sizes_reach_vllm_only_above_one(self, settings: Settings) -> None:
        for gpu in (True, False):  # the default command line (the CPU one included) has neither flag
            argv = server_command(settings, {}, gpu=gpu)
            assert not {"--tensor-parallel-size", "--pipeline-parallel-size"} & set(argv)
        split = settings.with_overrides(model__tensor_parallel_size=4, model__pipeline_parallel_size=2)
        argv = server_command(split, {}, gpu=True)
        pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
        assert pairs["--tensor-parallel-size"] == "4" and pairs["--pipeline-parallel-size"] == "2"
        assert "--enforce-eager" not in argv
        both = split.with_overrides(model__extra_args=["--tensor-parallel-size=8"])
        with pytest.raises(ConfigError, match=r"model\.tensor_parallel_size"):
            server_command(both, {}, gpu=True)
        with pytest.raises(ValueError, match="tensor_parallel_size"):
            settings.with_overrides(model__tensor_parallel_size=0)

    def test_auto_dtype_is_float32_on_a_cpu_without_bf16_units(self, settings: Settings) -> None:
        assert served_dtype("auto", gpu=False, cpuinfo="flags : fpu avx2 avx512f fma") == "float32"
        assert served_dtype("auto", gpu=False, cpuinfo="flags : avx512f avx512_bf16 amx_tile") == "bfloat16"
        assert served_dtype("auto", gpu=True, cpuinfo="flags : avx2") == "auto"  # vLLM picks on a GPU
        assert served_dtype("bfloat16", gpu=False, cpuinfo="flags : avx2") == "bfloat16"  # asked for: kept
        argv = server_command(settings, {}, gpu=False)
        assert argv[argv.index("--dtype") + 1] == ("bfloat16" if cpu_has_bf16() else "float32")

    def test_path_with_comma_uses_json_form(self, settings: Settings, tmp_path: Path) -> None:
        adapter = fake_adapter(tmp_path, "a,b")
        argv = server_command(settings, {"a": adapter})
        assert json.loads(argv[argv.index("--lora-modules") + 1]) == {"name": "a", "path": str(adapter)}

    def test_checkpoint_resolution(self, settings: Settings, tmp_path: Path) -> None:
        assert resolve_checkpoint(settings) == settings.models_dir / "SmolLM2-135M-Instruct"
        assert resolve_checkpoint(settings.with_overrides(model__source=str(tmp_path))) == tmp_path.resolve()
        with pytest.raises(ConfigError, match="unknown bundled model"):
            resolve_checkpoint(settings.with_overrides(model__source="bundled:nope"))
        with pytest.raises(ConfigError, match="neither"):
            resolve_checkpoint(settings.with_overrides(model__source="./no/such/dir"))
        gguf = tmp_path / "Some-Model.Q4_K_M.gguf"
        with pytest.raises(ConfigError, match="no GGUF file"):
            resolve_checkpoint(settings.with_overrides(model__source=str(gguf)))
        gguf.write_bytes(b"GGUF")
        converted = resolve_checkpoint(settings.with_overrides(model__source=str(gguf)))
        assert converted == settings.models_dir / "gguf-Some-Model.Q4_K_M"

    def test_a_gguf_file_is_converted_once_by_configuration(self, settings: Settings, tmp_path: Path) -> None:
        """Any GGUF file works as the chat model by its path alone (the bundled SmolLM2's file stands in)."""
        from docqa.model_server import MARKER_FILE, bundled_gguf, prepare

        gguf = tmp_path / "chat.gguf"
        gguf.symlink_to(bundled_gguf("SmolLM2-135M-Instruct"))
        configured = settings.with_overrides(model__source=str(gguf))
        target = prepare(configured)
        assert target == settings.models_dir / "gguf-chat" and (target / "config.json").is_file()
        marker = json.loads((target / MARKER_FILE).read_text())
        assert marker["source"] == str(gguf) and marker["format"] == "safetensors"
        stamp = (target / MARKER_FILE).stat().st_mtime_ns
        assert prepare(configured) == target and (target / MARKER_FILE).stat().st_mtime_ns == stamp  # not again

    def test_cpu_env_only_without_gpu(self, settings: Settings) -> None:
        env = server_env(settings, {"CUDA_VISIBLE_DEVICES": "", "PATH": "/bin"})
        assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
        if len(os.sched_getaffinity(0)) <= 4:  # a small host lends vLLM every core
            assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
        assert server_env(settings, {"CUDA_VISIBLE_DEVICES": "", "VLLM_CPU_NUM_OF_RESERVED_CPU": "1"})[
            "VLLM_CPU_NUM_OF_RESERVED_CPU"
        ] == "1"  # the operator's choice wins
        assert env["VLLM_NO_USAGE_STATS"] == "1" and env["PATH"] == "/bin"
        assert not cuda_visible({"CUDA_VISIBLE_DEVICES": "-1"})
        if not any(Path("/dev").glob("nvidia[0-9]*")):
            assert not cuda_visible({})

    def test_cpu_threads_float_and_sleep_unless_vllm_is_left_to_pin_them(self, settings: Settings) -> None:
        cpu = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "9"}  # an API process's own limit is not the server's
        env = server_env(settings, cpu)
        assert (env["OMP_NUM_THREADS"], env["VLLM_CPU_OMP_THREADS_BIND"], env["OMP_WAIT_POLICY"]) == (
            str(len(os.sched_getaffinity(0))), "nobind", "PASSIVE"
        )
        assert server_env(settings.with_overrides(model__cpu_threads=1), cpu)["OMP_NUM_THREADS"] == "1"
        pinned = server_env(settings.with_overrides(model__cpu_pin_threads=True), cpu)
        assert "VLLM_CPU_OMP_THREADS_BIND" not in pinned and "OMP_WAIT_POLICY" not in pinned

    def test_wildcard_bind_is_reached_locally(self, settings: Settings) -> None:
        assert server_url(settings.with_overrides(model__host="0.0.0.0", model__port=9001)) == (
            "http://127.0.0.1:9001/v1"
        )


class TestAdapterRegistry:
    def test_round_trip(self, settings: Settings, tmp_path: Path) -> None:
        assert registered_adapters(settings) == {}
        a, b = fake_adapter(tmp_path, "a"), fake_adapter(tmp_path, "b")
        register_adapter(settings, "support", a)
        register_adapter(settings, "legal", b)
        assert registered_adapters(settings) == {"support": a, "legal": b}
        register_adapter(settings, "support", b)  # re-registering replaces
        assert registered_adapters(settings)["support"] == b
        unregister_adapter(settings, "support")
        assert registered_adapters(settings) == {"legal": b}
        assert json.loads(registry_path(settings).read_text())["version"] == 1
        assert not list(settings.adapters_dir.glob("*.tmp"))

    def test_an_adapter_for_another_base_is_told_apart(self, tmp_path: Path) -> None:
        import torch
        from safetensors.torch import save_file

        from rag.adapters import adapter_mismatch

        adapter = fake_adapter(tmp_path, "smol")
        key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        save_file({key: torch.zeros(8, 576)}, str(adapter / "adapter_model.safetensors"))
        for name, hidden in (("same", 576), ("wider", 640)):
            (tmp_path / name).mkdir()
            (tmp_path / name / "config.json").write_text(json.dumps({"hidden_size": hidden}))
        assert adapter_mismatch(adapter, tmp_path / "same") is None
        assert "576 wide" in adapter_mismatch(adapter, tmp_path / "wider")

    def test_refusals(self, settings: Settings, tmp_path: Path) -> None:
        good = fake_adapter(tmp_path, "good")
        with pytest.raises(ConfigError, match="not allowed"):
            register_adapter(settings, "bad name=x", good)
        with pytest.raises(ConfigError, match="base model"):
            register_adapter(settings, "docqa-base", good)
        with pytest.raises(ConfigError, match=r"adapter_config\.json"):
            register_adapter(settings, "x", tmp_path)
        with pytest.raises(ConfigError, match="rank 128"):
            register_adapter(settings, "x", fake_adapter(tmp_path, "big", rank=128))
        with pytest.raises(ConfigError, match="modules_to_save"):
            register_adapter(settings, "x", fake_adapter(tmp_path, "full", modules_to_save=["lm_head"]))
        with pytest.raises(ConfigError, match="no adapter named"):
            unregister_adapter(settings, "ghost")

    def test_corrupt_registry_is_reported(self, settings: Settings) -> None:
        registry_path(settings).parent.mkdir(parents=True)
        registry_path(settings).write_text("{not json")
        with pytest.raises(ConfigError, match="corrupt"):
            registered_adapters(settings)

    def test_server_command_serves_registered_adapters(self, settings: Settings, tmp_path: Path) -> None:
        register_adapter(settings, "support", fake_adapter(tmp_path))
        argv = server_command(settings, registered_adapters(settings))
        assert f"support={tmp_path / 'a'}" in argv


FAKE_VLLM = textwrap.dedent(
    """
    import argparse, http.server, json, signal, subprocess, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int); p.add_argument("--served-model-name"); p.add_argument("--fail")
    p.add_argument("--leak-child", action="store_true")
    args, _ = p.parse_known_args(sys.argv[3:])  # after `-m vllm.entrypoints.openai.api_server`
    if args.fail:
        print("loading model...", flush=True); print(args.fail, flush=True); sys.exit(3)
    # a child in the same process group, like vLLM's engine core; stopped with us unless --leak-child
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    def on_term(*_):
        if not args.leak_child:
            child.terminate()
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    time.sleep(0.5)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"data": [{"id": args.served_model_name}]}).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.HTTPServer(("127.0.0.1", args.port), H).serve_forever()
    """
)


@pytest.fixture
def fake_vllm_settings(tmp_path: Path) -> Settings:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    script = tmp_path / "fake_vllm.py"
    script.write_text(FAKE_VLLM)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    python.chmod(0o755)
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    return Settings(
        data_dir=tmp_path / "data", model={"venv": venv, "source": str(checkpoint), "port": free_port()}
    )


class TestModelServerProcess:
    def test_start_ready_stop_leaves_nothing(self, fake_vllm_settings: Settings) -> None:
        with ModelServer(fake_vllm_settings, adapters={}) as server:
            pid = server.pid
            assert pid is not None
            assert len(group_members(pid)) >= 2  # the server and its child
            assert server.wait_ready(5) == ["docqa-base"]
            assert server.log_path.parent == fake_vllm_settings.data_dir / "logs"
        assert group_members(pid) == []
        assert server.process is not None and server.process.poll() is not None
        with (
            pytest.raises(OSError),
            socket.create_connection(("127.0.0.1", fake_vllm_settings.model.port), 1),
        ):
            pass

    def test_stragglers_are_killed(self, fake_vllm_settings: Settings) -> None:
        server = ModelServer(
            fake_vllm_settings.with_overrides(model__extra_args=["--leak-child"]), adapters={}
        )
        server.start()
        server.wait_ready(30)
        assert server.pid is not None
        started = time.monotonic()
        server.stop(timeout=2)
        assert group_members(server.pid) == []
        assert time.monotonic() - started < 15

    def test_a_merged_adapter_is_waited_for_by_its_name(self, fake_vllm_settings: Settings, tmp_path: Path) -> None:
        import docqa.model_server as ms

        made: list[tuple[str, Path]] = []

        def merge(settings: Settings, name: str, path: Path, force: bool = False) -> Path:
            made.append((name, path))
            return tmp_path / "merged"

        adapter = fake_adapter(tmp_path, "grounded")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ms, "prepare_merged", merge)
            with ModelServer(fake_vllm_settings, adapters={"docqa-grounded": adapter}) as server:
                assert server.wait_ready(5) == ["docqa-grounded"] and server.primary_name == "docqa-grounded"
            assert made == [("docqa-grounded", adapter)]
            server = ModelServer(fake_vllm_settings, adapters={"docqa-grounded": adapter}, merge=False)
            server.start()
            try:
                assert server.wait_ready(5) == ["docqa-base"] and server.merged is None
            finally:
                server.stop()
        assert len(made) == 1

    def test_death_during_start_quotes_the_log(self, fake_vllm_settings: Settings) -> None:
        s = fake_vllm_settings.with_overrides(
            model__extra_args=["--fail", "RuntimeError: no space for KV cache"]
        )
        server = ModelServer(s, adapters={})
        server.start()
        with pytest.raises(ModelServerError, match=r"(?s)exited with code 3.*no space for KV cache"):
            server.wait_ready(30)
        server.stop()

    def test_missing_venv_names_the_fix(self, settings: Settings, tmp_path: Path) -> None:
        s = settings.with_overrides(model__venv=str(tmp_path / "nope"))
        with pytest.raises(MissingDependencyError, match="make venv-vllm"):
            ModelServer(s, adapters={}).start()

    def test_busy_port_is_refused(self, fake_vllm_settings: Settings) -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", fake_vllm_settings.model.port))
            busy.listen()
            with pytest.raises(ModelServerError, match="already in use"):
                ModelServer(fake_vllm_settings, adapters={}).start()


class TestMergedCheckpoint:
    """The adapter merged into a copy of the real converted SmolLM2: the same function as base plus LoRA."""

    def test_merged_weights_answer_as_base_plus_adapter_and_are_made_once(
        self, prepared_model_dir: Path, tmp_path: Path
    ) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from docqa.model_server import MARKER_FILE, prepare_merged
        from tests.helpers import make_random_lora

        settings = Settings(data_dir=tmp_path / "data", model={"source": str(prepared_model_dir)})
        adapter = make_random_lora(prepared_model_dir, tmp_path / "lora", strength=2.0)
        merged = prepare_merged(settings, "support", adapter)
        assert merged.parent == settings.models_dir and (merged / "tokenizer_config.json").is_file()
        ids = torch.tensor([[1, 504, 3458, 282, 260, 3370, 30]])
        with torch.no_grad():
            lora = PeftModel.from_pretrained(
                AutoModelForCausalLM.from_pretrained(prepared_model_dir, dtype=torch.float32), str(adapter)
            )
            want = lora(ids).logits[0, -1]
            base = AutoModelForCausalLM.from_pretrained(prepared_model_dir, dtype=torch.float32)(ids).logits[0, -1]
            got = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)(ids).logits[0, -1]
        assert (want - base).abs().max() > 1.0  # the adapter changes the model...
        assert (got - want).abs().max() < 0.1 * (want - base).abs().max()  # ...and the merge is that change
        assert int(got.argmax()) == int(want.argmax())
        made = (merged / MARKER_FILE).stat().st_mtime_ns
        assert prepare_merged(settings, "support", adapter) == merged
        assert (merged / MARKER_FILE).stat().st_mtime_ns == made  # current: not merged again
        config = json.loads((adapter / "adapter_config.json").read_text())
        (adapter / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": 1}))
        prepare_merged(settings, "support", adapter)
        assert (merged / MARKER_FILE).stat().st_mtime_ns != made  # the adapter changed: merged again


def test_import_is_cheap() -> None:
    code = (
        "import sys, rag.generation, docqa.model_server, rag.adapters; print(sorted({'torch', 'transformers', "
    )
    code += "'openai', 'httpx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
