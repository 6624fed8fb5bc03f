"""The README and docs/ name only commands, options and environment variables that exist."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from app.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_DIRS = ("app", "recovery", "connectors", "ml", "tests")
#: Our variables' prefixes; other upper-case words in the docs (SQL, headers) are not variables.
ENV_NAME = re.compile(
    r"\b(?:(?:CARTRESQ|SHOPIFY|SENDGRID|TWILIO|VAPID|OPENAI|SMTP|REDIS|DATABASE|SENTRY|PROMETHEUS|STRIPE)_[A-Z0-9_]*[A-Z0-9]|APP_URL|SECRET_KEY)\b(?!\*)"
)


def _snippets(text: str) -> list[str]:
    """Inline code spans and code-block lines (comments dropped): where a doc names a command."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    lines = [line.split(" #", 1)[0] for block in blocks for line in block.splitlines()]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return lines + spans


def _commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for snippet in _snippets(doc.read_text()):
            for match in re.finditer(r"(?:^|[\s(;&|])(cartresq(?: [^;&|()]*)?)", snippet):
                found.append((doc.name, match.group(1).strip()))
    return found


def _resolve(line: str) -> tuple[click.Command, list[str]]:
    """The click command a doc line names, and the options it uses; fails on an unknown subcommand."""
    words = line.split()[1:]
    command: click.Command = main
    index = 0
    while index < len(words) and isinstance(command, click.Group) and re.fullmatch(r"[a-z][a-z-]*", words[index]):
        assert words[index] in command.commands, f"`{line}`: no command {words[index]!r}"
        command = command.commands[words[index]]
        index += 1
    options = [opt for word in words[index:] for opt in re.findall(r"(?<![\w-])--[a-z][a-z-]*", word)]
    return command, options


def test_the_docs_name_commands_at_all() -> None:
    names = {line.split()[1] for _, line in _commands() if len(line.split()) > 1}
    assert {"demo", "serve", "store", "train", "db"} <= names


@pytest.mark.parametrize("doc, line", _commands())
def test_every_command_and_option_the_docs_name_exists(doc: str, line: str) -> None:
    command, options = _resolve(line)
    if command.context_settings.get("ignore_unknown_options"):
        return  # `cartresq worker` hands its options to the dramatiq CLI
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
    if command is main:
        known |= {"--version"}
    for option in options:
        assert option in known, f"{doc}: `{line}`: {command.name} has no option {option}"


def _read_in_code() -> str:
    return "\n".join(
        path.read_text(errors="replace") for folder in CODE_DIRS for path in (ROOT / folder).rglob("*.py")
    )


def test_every_environment_variable_the_docs_name_is_read_by_the_code() -> None:
    code = _read_in_code()
    named = {(doc.name, name) for doc in DOCS for name in ENV_NAME.findall(doc.read_text())}
    assert len({name for _, name in named}) > 20  # the pattern finds the variables at all
    missing = sorted(f"{doc}: {name}" for doc, name in named if f'"{name}"' not in code)
    assert not missing, "named in the docs but read nowhere: " + ", ".join(missing)


def test_every_variable_settings_reads_is_documented_for_operators() -> None:
    settings_code = (ROOT / "recovery" / "config" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.get\(|\[)"([A-Z_]+)"', settings_code))
    documented = set(ENV_NAME.findall((ROOT / "docs" / "operators.md").read_text()))
    assert read and not read - documented, f"not in docs/operators.md: {sorted(read - documented)}"


def test_the_docs_link_only_to_files_that_exist_or_are_being_written() -> None:
    # Other engineers write these in parallel; the README links them already.
    pending = {"security.md", "security-storefront.md", "operations.md", "woocommerce.md", "effectiveness.md"}
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", doc.read_text()):
            path = (doc.parent / target).resolve()
            assert path.exists() or path.name in pending, f"{doc.name} links to missing {target}"
