"""Fine-tuning data and training logic: pure functions, then the dataset built on the real sample index."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from finetune.data import (
    DatasetError,
    QAItem,
    build_examples,
    cite,
    load_dataset,
    read_feedback,
    read_qa,
    strip_markers,
    write_dataset,
)
from finetune.data import (
    _group_split as group_split,
)
from finetune.data import (
    _overlap as word_overlap,
)
from finetune.synthetic import parse_pair, writer_model
from finetune.train import batches, encode, lr_at
from rag.evaluation.metrics import contains_answer
from rag.pipeline import preferred_model
from rag.prompting import DECLINE_TEXT, SYSTEM_PROMPT
from rag.settings import Settings


class TestTargets:
    def test_cite_marks_every_sentence_before_its_full_stop(self) -> None:
        assert cite("Returns take 30 days. Refunds follow within 14 days.", 2) == (
            "Returns take 30 days [2]. Refunds follow within 14 days [2]."
        )

    def test_cite_short_span_and_old_markers(self) -> None:
        assert cite("5200 mAh", 1) == "5200 mAh [1]"
        assert cite("It is 2 cm [3].", 1) == "It is 2 cm [1]."

    def test_strip_markers(self) -> None:
        assert strip_markers("It holds 5200 mAh [1][2]. Charge 4 hours [2, 3].") == "It holds 5200 mAh. Charge 4 hours."


class TestSplit:
    def test_split_is_by_group_stable_and_never_empty_or_total(self) -> None:
        groups = [f"doc{i}" for i in range(10)]
        held = group_split(groups, 0.2, seed=0)
        assert len(held) == 2 and held <= set(groups)
        assert group_split(list(reversed(groups)), 0.2, seed=0) == held
        assert group_split(groups, 0.2, seed=1) != held or len(groups) == 2
        assert len(group_split(["a", "b"], 0.9, seed=0)) == 1  # never every group
        assert group_split(["only"], 0.5, seed=0) == set()


class TestInputs:
    def test_read_qa_reports_the_bad_line(self, tmp_path: Path) -> None:
        path = tmp_path / "qa.jsonl"
        path.write_text('{"question": "q?", "answer": "a", "source": "x.pdf"}\n{"question": "no answer"}\n')
        with pytest.raises(DatasetError, match=r"qa.jsonl:2"):
            read_qa(path)
        path.write_text('{"question": "q?", "answer": "a", "answers": ["a", "A."], "page": 3}\n')
        (item,) = read_qa(path)
        assert item.answers == ["a", "A."] and item.page == 3 and item.source is None

    def test_feedback_keeps_up_votes_and_the_cited_source(self, tmp_path: Path) -> None:
        records = [
            {
                "id": "1", "created_at": "2025-01-01T00:00:00Z", "rating": "up", "comment": None,
                "question": "How long is the warranty?", "answer": "24 months [2].", "collection": "c", "model": "m",
                "citations": [
                    {"n": 1, "source": "/kb/faq.html", "page": None, "text": "other", "score": 0.4},
                    {"n": 2, "source": "/kb/manual.pdf", "page": 5, "text": "Warranty: 24 months.", "score": 0.9},
                ],
            },
            {"id": "2", "rating": "down", "question": "x?", "answer": "wrong", "citations": []},
        ]  # fmt: skip
        path = tmp_path / "fb.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        items, ignored = read_feedback(path)
        assert ignored == 1 and len(items) == 1
        assert items[0].answer == "24 months." and items[0].source == "/kb/manual.pdf" and items[0].page == 5
        assert items[0].origin == "feedback" and items[0].gold_text == "Warranty: 24 months."

    def test_synthetic_reply_parsing(self) -> None:
        assert parse_pair("Question: What is the fee?\nAnswer: 10%") == ("What is the fee?", "10%")
        assert parse_pair("Here is a question: the fee") is None
        assert parse_pair("Question: fee\nAnswer: 10%") is None  # not a question


class TestDatasetFile:
    def test_hash_is_recorded_and_checked(self, tmp_path: Path) -> None:
        path = tmp_path / "ds.jsonl"
        header = write_dataset(path, [], {"collection": "c", "inputs": []})
        assert header["format"] == "docqa-finetune/1" and len(header["examples_sha256"]) == 64
        loaded, examples = load_dataset(path)
        assert loaded == header and examples == []
        with open(path, "a") as fh:
            fh.write('{"type": "example", "question": "smuggled"}\n')
        with pytest.raises(DatasetError, match="changed after it was built"):
            load_dataset(path)


class TestSchedule:
    def test_batches_resume_where_they_stopped(self) -> None:
        run = batches(7, 3, seed=0, start=0)
        straight = [run() for _ in range(6)]
        resumed = batches(7, 3, seed=0, start=4)
        assert [resumed(), resumed()] == straight[4:]
        first_epoch = [i for batch in straight for i in batch][:7]
        assert sorted(first_epoch) == list(range(7))  # each example once per epoch

    def test_lr_warms_up_then_decays_to_a_tenth(self) -> None:
        lrs = [lr_at(s, 100, 1e-3, 0.1) for s in range(100)]
        assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1e-3)
        assert lrs[50] < lrs[10] and lrs[-1] == pytest.approx(1e-4, rel=0.05)


class TestEncode:
    def test_loss_starts_exactly_after_the_prompt_vllm_renders(self, ft_base_model: Path) -> None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(ft_base_model)
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Sources:\n[1] x\n\nQ"}]
        enc = encode(tok, messages, "5200 mAh [1]")
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert tok.decode(enc.input_ids[: enc.n_prompt]) == prompt
        answer = tok.decode(enc.input_ids[enc.n_prompt :])
        assert answer.startswith("5200 mAh [1]") and tok.eos_token in answer


class TestRaftExamples:
    """On the real sample index: retrieval, gold chunks, distractors, declines and the split."""

    @pytest.fixture(scope="class")
    def built(self, ft_data_dir: Path, embedder) -> tuple[list, list]:
        from docqa.services import Services

        services = Services(Settings(data_dir=ft_data_dir), embedder=embedder)
        items = read_qa(ft_data_dir.parent / "qa.jsonl")
        items.append(QAItem(items[0].question.upper(), items[0].answer, source=items[0].source))  # a duplicate
        items.append(QAItem("What colour is the office cat?", "grey", source="no_such_file.pdf"))
        reader = services.reader("samples")
        return build_examples(
            items, reader, services.retriever, distractors=2, decline_share=0.25, heldout_share=0.25, seed=0
        )

    def test_every_answer_example_shows_and_cites_a_chunk_holding_the_answer(self, built: tuple) -> None:
        examples, _ = built
        answers = [e for e in examples if e.kind == "answer"]
        assert len(answers) >= 10
        for e in answers:
            user = e.messages[-1]["content"]
            assert e.messages[0]["content"] == SYSTEM_PROMPT and user.endswith(f"Question: {e.question}")
            assert 1 <= e.gold_n <= len(e.passages) <= 3
            assert e.target.endswith(f"[{e.gold_n}]") or f"[{e.gold_n}]." in e.target
            gold = next(p for p in e.passages if p["n"] == e.gold_n)
            assert e.gold_chunk_id in gold["chunk_ids"] and gold["source"] == e.gold_source
            # The gold passage in the prompt holds (most words of) the expected answer.
            section = user.split(f"[{e.gold_n}] (", 1)[1].split("\n\n[", 1)[0]
            assert contains_answer(section, e.answers) or word_overlap(e.answers[0], section) >= 0.5, (e, section)

    def test_decline_examples_lack_the_gold_document(self, built: tuple) -> None:
        examples, _ = built
        declines = [e for e in examples if e.kind == "decline"]
        assert declines and all(e.target == DECLINE_TEXT and e.gold_n is None for e in declines)
        for e in declines:
            assert all(p["source"] != e.gold_source for p in e.passages)
        share = len(declines) / len(examples)
        assert 0.15 <= share <= 0.35

    def test_split_by_document_and_dedup(self, built: tuple) -> None:
        examples, skipped = built
        train = {e.group for e in examples if e.split == "train"}
        held = {e.group for e in examples if e.split == "heldout"}
        assert train and held and not train & held
        reasons = [s["reason"] for s in skipped]
        assert "duplicate" in reasons and any("not in the collection" in r for r in reasons)
        assert len({e.id for e in examples}) == len(examples)


class TestCli:
    def _run(self, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCQA_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        return subprocess.run(
            [sys.executable, "-m", "docqa.cli.main", "finetune", *args], env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip

    def test_data_command_writes_a_dataset_with_its_inputs(self, ft_data_dir: Path, tmp_path: Path) -> None:
        qa = ft_data_dir.parent / "qa.jsonl"
        out = tmp_path / "ds.jsonl"
        done = self._run(ft_data_dir, "data", "--qa", str(qa), "-c", "samples", "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr
        header = json.loads(done.stdout)
        assert header["inputs"][0]["sha256"] == hashlib.sha256(qa.read_bytes()).hexdigest()
        assert header["collection"] == "samples" and sum(header["counts"].values()) >= 15
        assert load_dataset(out)[0] == header

    def test_errors_say_what_to_do(self, tmp_path: Path) -> None:
        done = self._run(tmp_path, "register", "nothing-here")
        assert done.returncode == 1 and "adapter_config.json" in done.stderr
        done = self._run(tmp_path, "eval", "--adapter", "nothing-here")
        assert done.returncode == 1 and "docqa finetune train" in done.stderr


class _Served:
    """The two pipeline methods writer_model asks, over a fixed list of served names."""

    def __init__(self, settings: Settings, served: tuple[str, ...]) -> None:
        self.settings, self.served = settings, set(served)

    def served_models(self) -> set[str]:
        return self.served

    def default_model(self) -> str:
        return preferred_model(self.settings, self.served)


@pytest.mark.parametrize(
    ("served", "writer"),
    [
        ((), "docqa-base"),  # the server does not answer: the request names the base, and its error says why
        (("docqa-base", "docqa-grounded"), "docqa-base"),  # base + LoRA: the base writes
        (("docqa-grounded",), "docqa-grounded"),  # one adapter merged in: the base is not served
    ],
)
def test_synthetic_pairs_are_written_by_a_model_the_server_publishes(served: tuple[str, ...], writer: str) -> None:
    settings = Settings(answer={"adapter": "docqa-grounded"}, model={"served_name": "docqa-base"})
    assert writer_model(SimpleNamespace(settings=settings, pipeline=_Served(settings, served))) == writer
