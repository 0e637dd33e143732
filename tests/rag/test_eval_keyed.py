"""Key-string scoring for own question sets (rag.evaluation.keyed) and the question-file loader; no model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from rag.errors import ConfigError
from rag.evaluation.keyed import (
    aggregate,
    alternatives,
    citation_match,
    key_found,
    missing_keys,
    normalise,
    summarise,
    targets_met,
    verdict,
)
from rag.evaluation.question_set import KeyedQuestion, interleaved, load_question_set


class TestMatching:
    def test_normalisation_unifies_case_dashes_quotes_and_comma_spacing(self) -> None:
        assert normalise("  Ctime,  Size ,\u00a0INODE ") == "ctime,size,inode"
        assert normalise("\u22124 \u2013 \u201cfit.log\u201d \u2018x\u2019") == "-4 - \"fit.log\" 'x'"

    def test_alternatives_syntax(self) -> None:
        assert alternatives("1000 | 1,000 |  ") == ["1000", "1,000"]
        assert key_found("The limit is 1,000 by default.", "1000 | 1,000")
        assert key_found("The limit is 1000.", "1000 | 1,000")
        assert not key_found("The limit is 100.", "1000 | 1,000")

    def test_keys_match_on_boundaries_only(self) -> None:
        assert not key_found("by default 100 points", "10")
        assert key_found("the default factor is 10.0", "10")
        assert not key_found("it returns -40", "-4")
        assert key_found("it evaluates to \u22124.", "-4")
        assert not key_found("authentication", "authenticated")
        # Keys with punctuation at their edges need no boundary there.
        assert key_found("use `--dry-run` first", "--dry-run")
        assert key_found("format: %Y-%m-%d", "%Y-%m-%d")

    def test_every_key_must_be_present(self) -> None:
        keys = ["640", "480"]
        assert missing_keys("640 x 480 pixels", keys) == []
        assert missing_keys("640 pixels wide", keys) == ["480"]


class TestVerdicts:
    keys: ClassVar[list[str]] = ["64"]

    def test_right(self) -> None:
        assert (
            verdict(answerable=True, declined=False, quoted=False, shown="At most 64 tables.", must_contain=self.keys)
            == "right"
        )

    def test_wrong(self) -> None:
        assert (
            verdict(answerable=True, declined=False, quoted=False, shown="32 tables.", must_contain=self.keys)
            == "wrong"
        )

    def test_quote_holds(self) -> None:
        shown = 'From limits.html: "SQLite does not support joins containing more than 64 tables."'
        assert (
            verdict(answerable=True, declined=False, quoted=True, shown=shown, must_contain=self.keys) == "quote_holds"
        )

    def test_quote_misses(self) -> None:
        shown = 'From limits.html: "There is no mechanism to raise the limit."'
        assert (
            verdict(answerable=True, declined=False, quoted=True, shown=shown, must_contain=self.keys) == "quote_misses"
        )

    def test_declined_whatever_the_text(self) -> None:
        for answerable in (True, False):
            got = verdict(answerable=answerable, declined=True, quoted=False, shown="64", must_contain=self.keys)
            assert got == "declined"

    def test_unanswerable_answered_by_model_or_by_quote(self) -> None:
        assert verdict(answerable=False, declined=False, quoted=False, shown="Yes.", must_contain=[]) == "answered"
        assert (
            verdict(answerable=False, declined=False, quoted=True, shown='"..."', must_contain=[]) == "answered_quote"
        )


def test_citation_match_by_file_and_page() -> None:
    cited = [("gnuplot/gnuplot.pdf", 150), ("sqlite/limits.html", None)]
    assert citation_match(cited, "gnuplot/gnuplot.pdf", 150).page is True
    wrong_page = citation_match(cited, "gnuplot/gnuplot.pdf", 151)
    assert wrong_page.file is True and wrong_page.page is False
    html = citation_match(cited, "sqlite/limits.html", None)
    assert html.file is True and html.page is None
    assert citation_match(cited, "borg/usage/init.html", None).file is False
    assert citation_match([], "sqlite/limits.html", None).file is None


def _row(kind: str, doc_set: str, v: str, answerable: bool = True, **extra) -> dict:
    return {"kind": kind, "doc_set": doc_set, "verdict": v, "answerable": answerable, **extra}


def test_aggregation_per_kind_and_doc_set_with_targets() -> None:
    rows = [
        _row("table", "a", "right", file_cited=True, page_cited=True, seconds=1.0),
        _row("table", "a", "quote_holds", file_cited=True, page_cited=False, seconds=2.0),
        _row("table", "b", "wrong", file_cited=False, page_cited=None, seconds=3.0),
        _row("prose", "b", "declined", seconds=4.0),
        _row("unanswerable", "a", "declined", answerable=False, seconds=5.0),
        _row("unanswerable", "b", "answered_quote", answerable=False, seconds=6.0),
    ]
    result = aggregate(rows)
    total = result["total"]
    assert (total["answerable"], total["unanswerable"]) == (4, 2)
    assert (total["right"], total["quote_holds"], total["wrong"], total["declined"]) == (1, 1, 1, 1)
    assert total["right_or_quote_holds"] == 0.5 and total["wrong_shown"] == 0.25
    assert total["answerable_declined"] == 0.25 and total["unanswerable_declined"] == 0.5
    assert total["declined_unanswerable"] == 1 and total["answered_quote_unanswerable"] == 1
    # Citations are judged on the answers shown: 2 of 3 from the right file, 1 of 2 on the right page.
    assert total["cited_file"] == round(2 / 3, 4) and total["cited_page"] == 0.5
    table = result["by_kind"]["table"]
    assert (table["questions"], table["right"], table["wrong"], table["right_or_quote_holds"]) == (
        3,
        1,
        1,
        round(2 / 3, 4),
    )
    assert result["by_kind"]["unanswerable"]["right_or_quote_holds"] is None  # no answerable question there
    assert result["by_doc_set"]["b"]["wrong"] == 1 and result["by_doc_set"]["a"]["declined_unanswerable"] == 1
    assert result["s_median"] == 3.5 and result["s_p95"] == 5.0
    met = {t["figure"]: t["met"] for t in result["targets"]}
    assert met == {
        "right_or_quote_holds": False,
        "wrong_shown": False,
        "unanswerable_declined": False,
        "answerable_declined": False,
    }


def test_targets_met_when_figures_are_good() -> None:
    rows = [_row("prose", "a", "right")] * 19 + [_row("prose", "a", "quote_misses")]
    rows += [_row("unanswerable", "a", "declined", answerable=False)] * 9
    met = {t["figure"]: t["met"] for t in targets_met(summarise(rows))}
    assert met == {
        "right_or_quote_holds": True,
        "wrong_shown": True,
        "unanswerable_declined": True,
        "answerable_declined": True,
    }


class TestLoader:
    def write(self, tmp_path: Path, questions: object) -> Path:
        path = tmp_path / "q.json"
        path.write_text(json.dumps(questions))
        return path

    def test_list_or_object_and_split(self, tmp_path: Path) -> None:
        qs = [
            {"id": "a", "question": "How many?", "must_contain": ["64"], "split": "dev"},
            {"id": "b", "question": "Is there an app?", "answerable": False, "split": "locked"},
        ]
        _, every = load_question_set(self.write(tmp_path, qs), "all")
        assert [q.id for q in every] == ["a", "b"] and every[1].kind == "unanswerable"
        header, dev = load_question_set(self.write(tmp_path, {"format": "x", "questions": qs}), "dev")
        assert header == {"format": "x"} and [q.id for q in dev] == ["a"]

    @pytest.mark.parametrize(
        "bad, message",
        [
            ([{"id": "a", "question": "q"}], "at least one 'must_contain'"),
            ([{"id": "a", "question": "q", "must_contain": "64"}], "list of non-empty strings"),
            ([{"id": "a", "question": "q", "must_contain": ["1"], "page": 0}], "1-based"),
            ([{"id": "a", "question": "q", "must_contain": ["1"]}] * 2, "unique"),
            ([{"question": "q", "must_contain": ["1"]}], "'id'"),
        ],
    )
    def test_rejects_malformed_questions(self, tmp_path: Path, bad: list, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            load_question_set(self.write(tmp_path, bad))

    def test_rejects_unknown_or_empty_split(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, [{"id": "a", "question": "q", "must_contain": ["1"], "split": "dev"}])
        with pytest.raises(ConfigError, match="--split"):
            load_question_set(path, "test")
        with pytest.raises(ConfigError, match="no questions"):
            load_question_set(path, "locked")


def test_interleaved_order_samples_every_group_first() -> None:
    def q(i: str, doc_set: str, kind: str) -> KeyedQuestion:
        return KeyedQuestion(id=i, question=i, must_contain=["x"], doc_set=doc_set, kind=kind)

    qs = [q("a1", "a", "table"), q("a2", "a", "table"), q("a3", "a", "prose"), q("b1", "b", "table")]
    assert [x.id for x in interleaved(qs)] == ["a3", "a1", "b1", "a2"]
    assert sorted(x.id for x in interleaved(qs)) == sorted(x.id for x in qs)
