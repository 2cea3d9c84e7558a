"""The README stays true to the CLI: it starts with the two make commands CI relies on, it shows an example of
every transaction kind a client can send, and every `carecoin ...` line in its code blocks names a real
command with options that command has (resolved with click, nothing run, no network)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from cli.gov import ALIASES, PROPOSE
from cli.main import main
from ledger.process import KINDS
from ledger.tx import SWEEP_KIND

README = Path(__file__).resolve().parent.parent / "README.md"

# Kinds documented through a friendlier command instead of (or as well as) `carecoin tx <kind>`.
DOMAIN_COMMANDS: dict[str, tuple[str, ...]] = {
    "register-customer": ("customer", "register"),
    "approve-proposal": ("gov", "approve"),
    **{kind: ("gov", "propose", ALIASES.get(kind.removeprefix(PROPOSE), kind.removeprefix(PROPOSE)))
       for kind in KINDS if kind.startswith(PROPOSE)},
}
# Kinds nobody submits: admission refuses them from clients (``system_tx``).
SYSTEM_KINDS = {SWEEP_KIND}


def read_code_block_commands(text: str) -> list[str]:
    """Every line of a fenced code block that starts with ``carecoin `` (backslash continuations joined)."""
    commands: list[str] = []
    in_block = False
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            in_block = not in_block
            pending = ""
            continue
        if not in_block:
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("carecoin "):
            commands.append(line)
    return commands


def resolve(argv: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """Walk the click groups from ``main`` along ``argv``: the leaf command, its path, the arguments left."""
    command: click.Command = main
    path = ["carecoin"]
    parent = None
    rest = list(argv)
    while isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        if not rest:
            raise click.UsageError(f"{' '.join(path)} needs a subcommand")
        name, sub, rest = command.resolve_command(ctx, rest)  # UsageError: no such command
        assert sub is not None and name is not None
        command, parent = sub, ctx
        path.append(name)
    return command, path, rest


def find_problems(line: str) -> list[str]:
    """What is wrong with one README command line: an unknown command, an option its command lacks, a required
    option or argument left out, a value-taking option at the end of the line."""
    argv = shlex.split(line, comments=True)[1:]
    try:
        command, path, rest = resolve(argv)
    except click.UsageError as exc:
        return [f"{line!r}: {exc.format_message()}"]
    where = " ".join(path)
    options = {name: param for param in command.params if isinstance(param, click.Option)
               for name in (*param.opts, *param.secondary_opts)}
    options.setdefault("--help", None)
    options.setdefault("-h", None)
    problems: list[str] = []
    positionals: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if not token.startswith("-") or re.fullmatch(r"-\d+", token):
            positionals.append(token)
            continue
        name, has_value = (token.split("=", 1)[0], True) if "=" in token else (token, False)
        if name not in options:
            problems.append(f"{line!r}: `{where}` has no option {name} (it has {', '.join(sorted(options))})")
            continue
        seen.add(name)
        param = options[name]
        if param is not None and not param.is_flag and not param.count and not has_value:
            if i >= len(rest):
                problems.append(f"{line!r}: {name} of `{where}` needs a value")
            i += 1  # the option's value
    for param in command.params:
        if isinstance(param, click.Option) and param.required and not seen & {*param.opts, *param.secondary_opts}:
            problems.append(f"{line!r}: `{where}` requires {'/'.join(param.opts)}")
    required_args = [p for p in command.params if isinstance(p, click.Argument) and p.required]
    if len(positionals) < len(required_args):
        problems.append(f"{line!r}: `{where}` needs {len(required_args)} argument(s) "
                        f"({', '.join(p.human_readable_name for p in required_args)}); got {positionals}")
    return problems


@pytest.fixture(scope="module")
def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_starts_with_make_demo_then_make_test(readme_text: str) -> None:
    lines = readme_text.splitlines()
    assert lines[0] == "# carecoin"
    fence = lines.index("```")
    assert fence == 2, f"the README's first code block should follow the title; found it at line {fence + 1}"
    assert lines[3].startswith("make demo "), lines[3]
    assert lines[4].startswith("make test "), lines[4]


def test_readme_shows_every_transaction_kind_a_client_can_send(readme_text: str) -> None:
    shown: set[tuple[str, ...]] = set()
    for line in read_code_block_commands(readme_text):
        words = tuple(w for w in shlex.split(line, comments=True)[1:] if not w.startswith("-"))
        shown.update(words[:n] for n in (2, 3))
    missing = [kind for kind in KINDS if kind not in SYSTEM_KINDS
               and ("tx", kind) not in shown and DOMAIN_COMMANDS.get(kind) not in shown]
    assert not missing, f"no `carecoin tx <kind>` (or domain command) example in README.md for: {missing}"


def test_every_readme_command_line_resolves_with_options_its_command_has(readme_text: str) -> None:
    commands = read_code_block_commands(readme_text)
    assert len(commands) >= 60, f"found only {len(commands)} `carecoin` lines in README.md's code blocks"
    problems = [problem for line in commands for problem in find_problems(line)]
    assert not problems, "README.md commands that do not match the CLI:\n" + "\n".join(problems)


@pytest.mark.parametrize("line, expected", [
    ("carecoin tx pay-order --key a.key --order-id O1 --coin 4 --wait", "has no option --coin"),
    ("carecoin tx pay-orders --key a.key --order-id O1", "No such command"),
    ("carecoin tx pay-order --key a.key --coins 4", "requires --order-id"),
    ("carecoin receipt verify --genesis genesis.json", "needs 1 argument"),
    ("carecoin history $ANN --key", "--key of `carecoin history` needs a value"),
])
def test_a_drifted_command_line_is_reported(line: str, expected: str) -> None:
    problems = find_problems(line)
    assert any(expected in p for p in problems), problems


def test_a_correct_command_line_passes() -> None:
    line = 'carecoin tx open-ticket --key ann.key --ticket-id T1 --category complaint --content "cracked" --wait'
    assert find_problems(line) == []
