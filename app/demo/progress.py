"""Progress for long commands (demo, train): staged lines and bars on stderr, the result on stdout.

On a terminal, bars move (rich); otherwise each stage is one plain line with no ANSI codes, so logs and
pipes stay readable. With `as_json`, stdout carries only the result as one JSON document.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars


class Progress:
    def __init__(self, name: str = "demo", as_json: bool = False, stderr: Any = None) -> None:
        self.name = name
        self.as_json = as_json
        self.console = Console(file=stderr or sys.stderr, highlight=False)

    def stage(self, text: str) -> None:
        self.console.print(f"{self.name}: {text}", markup=False, soft_wrap=True)

    @contextmanager
    def working(self, text: str) -> Iterator[None]:
        """One step without a measurable total: a spinner on a terminal, then how long it took."""
        started = time.monotonic()
        if self.console.is_terminal:
            with self.console.status(f"{self.name}: {text}"):
                yield
        else:
            self.stage(f"{text}...")
            yield
        self.stage(f"{text}: done in {time.monotonic() - started:.0f} s")

    @contextmanager
    def bar(self, text: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar to `total`; the caller advances it. Off a terminal: one line when it starts and ends."""
        started = time.monotonic()
        if not self.console.is_terminal:
            self.stage(f"{text} (0/{total})...")
            yield lambda _n: None
            self.stage(f"{text}: {total}/{total} in {time.monotonic() - started:.0f} s")
            return
        columns = (TextColumn(f"{self.name}: {text}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Bars(*columns, console=self.console) as bars:
            task = bars.add_task(text, total=total)
            yield lambda n: bars.advance(task, n)

    def result(self, human: str, machine: dict[str, Any]) -> None:
        """The outcome: the human summary, or with --json one JSON document on stdout."""
        if self.as_json:
            sys.stdout.write(json.dumps(machine, default=str) + "\n")
        else:
            sys.stdout.write(human + "\n")
        sys.stdout.flush()
