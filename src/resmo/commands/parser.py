"""The ``resmo`` command's argparse parser: usage errors in one line, flags spelled out,
near misses named (``did you mean --epochs?``), help texts computed only when shown.

Only argparse's public API is used. :class:`OneLineParser` records the action that each
``add_argument`` returns (its own and its argument groups'), so the flags it knows are the
recorded actions' ``option_strings``, and the ``add_subparsers`` actions, whose ``choices``
are the subcommands' parsers. Each parser sets itself as the default of
:data:`PARSER_KEY` (``set_defaults``); argparse applies a subparser's defaults after its
parent's, so a parsed namespace names the innermost parser that read it (``resmo eval knn``).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Iterator, Sequence

from resmo.validation import one_line

#: The namespace attribute that holds the innermost (sub)parser a command line was parsed with.
PARSER_KEY = "command_parser"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (no usage dump) with exit code 2.

    Flags must be spelled out (``allow_abbrev=False``: ``--epoch 2`` is an error, not
    ``--epochs 2``), and an unknown flag gets the closest known ones (``did you mean --epochs?``).
    Subparsers made through ``add_subparsers`` are of the same class and inherit both.
    """

    def __init__(self, *args, **kwargs) -> None:
        self.recorded_actions: list[argparse.Action] = []  # set first: argparse's __init__ adds --help
        self.subcommand_actions: list[argparse.Action] = []
        self.given_arguments: list[str] = []  # the arguments of the last parse, for error()
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.set_defaults(**{PARSER_KEY: self})

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return self.record(super().add_argument(*args, **kwargs))

    def add_argument_group(self, *args, **kwargs):
        return self.recording(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, **kwargs):
        return self.recording(super().add_mutually_exclusive_group(**kwargs))

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", type(self))
        action = super().add_subparsers(**kwargs)
        self.subcommand_actions.append(action)
        return action

    def record(self, action: argparse.Action) -> argparse.Action:
        """Keep ``action`` among this parser's arguments; returns it."""
        self.recorded_actions.append(action)
        return action

    def recording(self, group):
        """``group`` (an argument group of this parser) with its ``add_argument`` recorded here."""
        add_argument = group.add_argument
        group.add_argument = lambda *args, **kwargs: self.record(add_argument(*args, **kwargs))
        return group

    def long_flags(self) -> list[str]:
        """Every ``--flag`` this parser reads, in the order they were added."""
        return [option for action in self.recorded_actions for option in action.option_strings
                if option.startswith("--")]

    def subparsers(self) -> Iterator[argparse.ArgumentParser]:
        """The parsers of this parser's subcommands (``resmo eval`` -> knn, linear, dense)."""
        for action in self.subcommand_actions:
            yield from action.choices.values()

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("the following arguments are required"):  # --encodr for --encoder
            message += flag_hint(self, self.given_arguments, name_flags=True)
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")

    def format_help(self) -> str:
        for action in self.recorded_actions:  # help texts made when help is shown: see deferred_help
            text = getattr(action, "help_text", None)
            if text is not None:
                action.help = text()
        return super().format_help()

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self.given_arguments = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace, extras = self.parse_known_args(args, namespace)
        parser = chosen_parser(self, namespace)
        if extras and isinstance(getattr(namespace, "overrides", None), list):
            # argparse fills a nargs="*" positional at its first run of values only:
            # `a=1 --epochs 2 b=2` leaves b=2 over; keep such key=value tokens, in order
            kept = [token for token in extras if "=" in token and not token.startswith("-")]
            namespace.overrides.extend(kept)
            extras = [token for token in extras if token not in kept]
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}{flag_hint(parser, extras)}")
        return namespace


def chosen_parser(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost (sub)parser that ``namespace`` was parsed with (``resmo eval knn``);
    ``parser`` for a namespace that no :class:`OneLineParser` made."""
    return getattr(namespace, PARSER_KEY, parser)


def flag_hint(parser: OneLineParser, tokens: Sequence[str], *, name_flags: bool = False) -> str:
    """``"; did you mean --epochs?"`` for the unknown flags among ``tokens`` that are close
    to a flag of ``parser`` (``""`` when none is); with several such flags, or
    ``name_flags``, each hint starts with its flag (``"; --epohcs: did you mean --epochs?"``)."""
    known = parser.long_flags()
    hints = []
    for token in tokens:
        if token == "--":  # the rest are positional values
            break
        flag = token.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            matches = difflib.get_close_matches(flag, known, n=2, cutoff=0.6)
            if matches:
                hints.append((flag, f"did you mean {' or '.join(matches)}?"))
    if len(hints) == 1 and not name_flags:
        return f"; {hints[0][1]}"
    return "".join(f"; {flag}: {hint}" for flag, hint in hints)


def deferred_help(action: argparse.Action, text: Callable[[], str]) -> None:
    """Make ``action``'s help ``text()``, computed only when help is shown: the names of
    methods and backbones come from their registries, which import torch, and parsing a
    command line must stay fast (and interruptible by Ctrl+C with one line)."""
    action.help_text = text  # type: ignore[attr-defined]
