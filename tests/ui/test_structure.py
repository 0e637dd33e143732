"""Tables and code blocks read back from a passage's text (ui/structure.py), and how the staff UI shows them:
a markdown table with escaped cells and the evidence row highlighted, code fenced as written."""

from __future__ import annotations

from ui.answering import evidence_spans, quote_answer_markdown, quote_markdown
from ui.structure import Segment, looks_like_code, segments

LEAD = "The following format codes are available:"
ROW_J = "Format: %j | Explanation: day of the year, 001–366"
ROW_U = "Format: %U | Explanation: week <b>number</b> | a|b"
TABLE = f"Dates\n\n{LEAD}\nFormat | Explanation\n{ROW_J}\n{ROW_U}\n\nSee the manual."
CODE = "To reset the robot, run:\n$ sweepctl reset --factory\nsweepctl reboot\n\nIt restarts in a minute."


def shown(text: str) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in segments(text)]


def table_of(text: str) -> Segment:
    return next(s for s in segments(text) if s.kind == "table")


class TestTables:
    def test_rows_under_a_header_line_are_one_table_with_the_header_as_columns(self) -> None:
        parts = shown(TABLE)
        assert [kind for kind, _ in parts] == ["text", "table", "text"]
        assert parts[0][1].rstrip() == f"Dates\n\n{LEAD}"  # the lead-in stays text above the table
        table = table_of(TABLE)
        assert table.columns == ("Format", "Explanation", "")
        assert [r.cells for r in table.rows] == [
            ("%j", "day of the year, 001–366", ""),
            ("%U", "week <b>number</b>", "a|b"),  # a cell without a name: by position
        ]
        assert TABLE[table.rows[0].start : table.rows[0].end] == ROW_J

    def test_without_a_header_line_the_columns_are_the_names_in_order(self) -> None:
        text = "Model: X200 | Battery life: 4 h\nModel: X300 | Weight: 1.2 kg | Battery life: 6 h"
        table = table_of(text)
        assert table.columns == ("Model", "Battery life", "Weight")
        assert [r.cells for r in table.rows] == [("X200", "4 h", ""), ("X300", "6 h", "1.2 kg")]
        assert table.start == 0 and table.end == len(text)

    def test_a_value_holding_a_colon_stays_whole_under_its_column(self) -> None:
        table = table_of("Setting | Default\nSetting: start time | Default: 08:00: weekdays")
        assert table.rows[0].cells == ("start time", "08:00: weekdays")

    def test_a_line_with_one_named_cell_or_prose_with_a_pipe_is_no_table(self) -> None:
        for text in ("Note: the tank holds 0.5 l.", "Use a | b to pipe output.", "Format | Explanation"):
            assert [kind for kind, _ in shown(text)] == ["text"], text


class TestCode:
    def test_command_lines_under_a_lead_in_are_code(self) -> None:
        parts = shown(CODE)
        assert parts[1] == ("code", "$ sweepctl reset --factory\nsweepctl reboot")
        assert [kind for kind, _ in parts] == ["text", "code", "text"]

    def test_a_command_under_a_table_in_a_merged_passage_is_code(self) -> None:
        # Adjacent chunks are merged into one passage with a single line break: the table ends the block.
        text = f"{LEAD}\nFormat | Explanation\n{ROW_J}\nAfter that:\n{CODE}"
        assert [kind for kind, _ in shown(text)] == ["text", "table", "text", "code", "text"]
        assert shown(text)[3] == ("code", "$ sweepctl reset --factory\nsweepctl reboot")

    def test_a_list_under_a_lead_in_stays_text(self) -> None:
        text = "The robot has three modes:\nEco: quiet, for night runs\nStandard for daily cleaning\nTurbo for carpets"
        assert [kind for kind, _ in shown(text)] == ["text"]

    def test_indented_lines_are_code_anywhere_and_a_blank_line_inside_code_keeps_it_one_block(self) -> None:
        text = "Example:\nif ready:\n    start()\n\n    stop()\n\nThat is all."
        code = [t for kind, t in shown(text) if kind == "code"]
        assert code == ["if ready:\n    start()\n\n    stop()"]

    def test_what_looks_like_code(self) -> None:
        for line in ("  indented()", "$ ls", "a  b", "apt-get install --yes foo", "cp ./x ~/y", "x=1", "main()"):
            assert looks_like_code(line), line
        for line in ("Edit /etc/fstab to mount it.", "Eco: quiet", "Turbo for carpets", "the item(s) on the tray"):
            assert not looks_like_code(line), line


class TestShownInTheUi:
    def test_the_table_is_markdown_with_escaped_cells_and_the_evidence_row_highlighted(self) -> None:
        evidence = [{"n": 1, "text": ROW_J, "lead": LEAD}]
        quoted = quote_markdown(TABLE, evidence_spans(TABLE, 1, evidence), 900).splitlines()
        assert quoted[quoted.index(f"> {LEAD}") + 1 :] == [
            ">",
            "> | Format | Explanation |   |",
            "> | --- | --- | --- |",
            "> | :orange-background[%j] | :orange-background[day of the year, 001–366] |   |",
            "> | %U | week \\<b\\>number\\</b\\> | a\\|b |",  # markup and pipes in a cell are text
            ">",
            "> See the manual\\.",
        ]

    def test_code_is_fenced_as_written_with_a_fence_longer_than_its_backticks(self) -> None:
        text = "Run:\n$ echo ```done``` *now*\n  --flag"
        quoted = quote_markdown(text, [], 900).splitlines()
        assert quoted == ["> Run:", ">", "> ````text", "> $ echo ```done``` *now*", ">   --flag", "> ````"]

    def test_a_cut_passage_keeps_the_rows_it_touches_whole(self) -> None:
        text = "filler words " * 100 + "\n" + TABLE
        quoted = quote_markdown(text, evidence_spans(text, 1, [{"n": 1, "text": ROW_J}]), 400)
        assert "> | :orange-background[%j] | :orange-background[day of the year, 001–366] |   |" in quoted
        assert quoted.startswith("> … ")

    def test_a_quoted_row_is_a_small_table_with_the_header_of_its_passage(self) -> None:
        message = {
            "mode": "quote",
            "content": f'From dates.pdf, page 3: "{LEAD} … {ROW_J}" [1]',
            "evidence": [{"n": 1, "text": ROW_J, "lead": LEAD}],
            "citations": [{"n": 1, "text": TABLE}],
        }
        assert quote_answer_markdown(message) == "\n\n".join(
            [
                "From dates\\.pdf, page 3:",
                f"{LEAD} …",
                "| Format | Explanation |   |\n| --- | --- | --- |\n| %j | day of the year, 001–366 |   |",
                "\\[1\\]",
            ]
        )

    def test_a_quoted_command_is_code_and_a_quoted_sentence_stays_the_answer_text(self) -> None:
        line = "$ sweepctl reset --factory"
        command = {
            "mode": "quote",
            "content": f'From s3.pdf, page 2: "To reset the robot, run: … {line}" [1]',
            "evidence": [{"n": 1, "text": line, "lead": "To reset the robot, run:"}],
            "citations": [{"n": 1, "text": CODE}],
        }
        assert f"```text\n{line}\n```" in (quote_answer_markdown(command) or "")
        sentence = dict(command, content='From s3.pdf, page 2: "It restarts in a minute." [1]')
        sentence["evidence"] = [{"n": 1, "text": "It restarts in a minute."}]
        assert quote_answer_markdown(sentence) is None
        assert quote_answer_markdown(dict(command, mode="verify")) is None
