"""resmo's argparse parser (resmo.commands.parser) uses argparse's public API only: the flags it
knows, the subcommand chosen and the hints come from what ``add_argument`` / ``add_subparsers``
return and from ``set_defaults``, never from argparse's private members."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resmo.cli import build_parser
from resmo.commands.parser import OneLineParser, chosen_parser, flag_hint
from tests.commands.test_cli import run_main
from tests.eval_helpers import assert_one_line_error

SOURCE = Path(__file__).resolve().parents[2] / "src" / "resmo"
#: ``x._name``: a private member of any object (dunders such as ``super().__init__`` aside)
PRIVATE_MEMBER = re.compile(r"\w+\._[A-Za-z]\w*")


@pytest.mark.parametrize("path", ["cli.py", "commands/parser.py"])
def test_the_parser_code_reads_no_private_member(path):
    text = (SOURCE / path).read_text()
    found = [f"{path}:{text.count(chr(10), 0, match.start()) + 1}: {match.group()}"
             for match in PRIVATE_MEMBER.finditer(text)]
    assert found == [], "use argparse's public API (what add_argument / add_subparsers return, set_defaults)"


def test_the_pattern_finds_what_the_parser_code_used_to_read():
    old = ("for action in parser._actions:\n    if isinstance(action, argparse._SubParsersAction):\n"
           "known = parser._option_string_actions\nfor action in self._actions:\n")
    assert PRIVATE_MEMBER.findall(old) == ["parser._actions", "argparse._SubParsersAction",
                                           "parser._option_string_actions", "self._actions"]
    assert PRIVATE_MEMBER.findall("super().__init__(*args)") == []


def test_the_long_flags_include_help_groups_and_aliases():
    parser = OneLineParser(prog="p")
    parser.add_argument("run")
    parser.add_argument("-e", "--encoder", "--branch")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--iterations")
    group.add_argument("--epochs")
    assert parser.long_flags() == ["--help", "--encoder", "--branch", "--iterations", "--epochs"]
    assert flag_hint(parser, ["--epoch=3", "x", "--"]) == "; did you mean --epochs?"
    assert flag_hint(parser, ["--", "--epoch"]) == ""  # after --: positional values


def test_the_chosen_parser_is_the_innermost_one():
    parser = build_parser()
    names = {tuple(argv): chosen_parser(parser, parser.parse_args(argv)).prog for argv in (
        ["pretrain"], ["eval", "knn", "runs/a"], ["eval", "dense", "runs/a", "--data", "voc"],
        ["transfer", "detect", "runs/a", "--data", "voc"], ["export", "runs/a", "--encoder", "teacher"])}
    assert list(names.values()) == ["resmo pretrain", "resmo eval knn", "resmo eval dense",
                                    "resmo transfer detect", "resmo export"]


def test_a_flag_of_a_mutually_exclusive_group_is_suggested(capsys):
    code, err = run_main(["transfer", "detect", "runs/a", "--data", "voc", "--iteration", "3"], capsys)
    assert_one_line_error(code, err, "resmo transfer detect: error: unrecognized arguments: --iteration 3",
                          "did you mean --iterations?")
