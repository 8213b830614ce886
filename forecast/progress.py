"""Progress of long work — training epochs, backtest folds, promotion, pipeline steps — on stderr.

One small interface, three displays:

* ``RichProgress``: live bars (``rich``) with elapsed time and ETA, for a terminal;
* ``PlainProgress``: one line per event, for logs and CI, e.g.
  ``epoch 3/20 loss 0.41 val_loss 0.39 (12 s, ~60 s left)`` or
  ``backtest naive: fold 1/3 mae 0.52 (0 s, ~1 s left)``;
* ``SilentProgress``: nothing (the default).

The library reports to ``current()``, a context variable that is silent unless someone sets it:
a library user gets no output unless they ask, with ``using(PlainProgress())`` or by passing a
display explicitly (``fit(..., progress=...)``, ``backtest(..., progress=...)``). The CLI chooses
one display per command with ``for_cli``:

* stderr is a terminal → ``RichProgress``; otherwise (CI, a log file) → ``PlainProgress``;
* ``--json`` → ``PlainProgress`` on stderr whatever stderr is: stdout holds only the JSON object,
  and a script reading stderr gets whole lines, never the cursor codes of a live display;
* the environment variable ``FORECAST_PROGRESS`` overrides the choice: ``rich``, ``plain`` or
  ``off``.

Nested tasks name their context: a fold inside the promotion backtest of version 3 is printed
``promotion of demo, challenger version 3: backtest model (lstm): fold 2/3 mae 0.41 (...)``.

Example:
    >>> with using(PlainProgress()):
    ...     with current().task("fold", total=2, label="backtest naive") as task:
    ...         task.advance(mae=0.52)  # backtest naive: fold 1/2 mae 0.52 (0 s, ~0 s left)
    ...         task.advance(mae=0.50)  # backtest naive: fold 2/2 mae 0.5 (0 s)
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, TextIO, runtime_checkable

#: the environment variable that overrides the CLI's choice of display
ENV_VAR = "FORECAST_PROGRESS"
#: its allowed words
MODES = ("rich", "plain", "off")

Clock = Callable[[], float]


@runtime_checkable
class Task(Protocol):
    """One unit of work counted in steps (epochs, folds, pipeline steps)."""

    def advance(self, steps: int = 1, *, detail: str = "", **values: float) -> None:
        """Counts ``steps`` more steps done and reports them.

        Args:
            steps: steps completed since the last call.
            detail: a word shown after the count (e.g. the pipeline step's name).
            **values: numbers shown after it, ``name value`` (e.g. ``loss=0.41``).
        """

    def skip_to(self, completed: int) -> None:
        """Sets the steps already done before this process started (a resumed training run),
        without reporting them; the ETA counts only the steps done from here on."""

    def relabel(self, label: str | None) -> None:
        """Changes what the task is about (e.g. the candidate a promotion backtests now)."""


@runtime_checkable
class Progress(Protocol):
    """A progress display. ``active`` is False for the silent one: callers may skip work that
    only feeds the display (e.g. ``fit`` keeps Keras's own printing then)."""

    active: bool

    def task(self, name: str, total: int | None = None, *,
             label: str | None = None) -> contextlib.AbstractContextManager[Task]:
        """A context manager yielding a ``Task``; the task ends with the block.

        Args:
            name: the word before the count: ``"epoch"``, ``"fold"``, ``"step"``.
            total: the steps expected (None: unknown, no ETA).
            label: what the task is about, shown before ``name`` in this task's lines and in
                those of the tasks opened inside it (``"backtest naive"``).
        """

    def note(self, message: str) -> None:
        """Shows one line of text (an announcement: what is about to run)."""


# -- shared bookkeeping ------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``"12 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``.

    Example:
        >>> format_duration(12.4), format_duration(125), format_duration(3720)
        ('12 s', '2 min 05 s', '1 h 02 min')
    """
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_values(values: Mapping[str, float]) -> str:
    """``"loss 0.41 val_loss 0.39"`` (4 significant digits); non-numbers as they are."""
    parts = []
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            parts.append(f"{key} {value}")
        else:
            parts.append(f"{key} {value:.4g}")
    return " ".join(parts)


@dataclass
class _State:
    """What a display knows of one task."""

    name: str
    total: int | None
    label: str | None
    start: float
    completed: int = 0
    base: int = 0  # steps done before this process (skip_to): not counted in the rate
    detail: str = ""
    values: dict = field(default_factory=dict)
    finished: bool = False  # the block ended (e.g. training stopped early): no ETA

    def elapsed(self, now: float) -> float:
        return max(0.0, now - self.start)

    def remaining(self, now: float) -> float | None:
        """Seconds left at the mean pace so far; None when unknown (no total, nothing done)."""
        done = self.completed - self.base
        if self.total is None or done <= 0 or self.finished:
            return None
        left = max(0, self.total - self.completed)
        return self.elapsed(now) / done * left

    def count(self) -> str:
        return f"{self.completed}/{self.total}" if self.total is not None else str(self.completed)


class _Task:
    """The ``Task`` every display hands out: it updates the state and tells its display."""

    def __init__(self, state: _State, changed: Callable[..., None],
                 clock: Clock):
        self._state = state
        self._changed = changed
        self._clock = clock

    def advance(self, steps: int = 1, *, detail: str = "", **values: float) -> None:
        state = self._state
        state.completed += int(steps)
        state.detail = detail
        state.values = {k: v for k, v in values.items() if v is not None}
        self._changed(state)

    def skip_to(self, completed: int) -> None:
        state = self._state
        state.completed = state.base = int(completed)
        state.start = self._clock()

    def relabel(self, label: str | None) -> None:
        self._state.label = label
        self._changed(self._state, report=False)


class _NullTask:
    def advance(self, steps: int = 1, *, detail: str = "", **values: float) -> None:
        return None

    def skip_to(self, completed: int) -> None:
        return None

    def relabel(self, label: str | None) -> None:
        return None


# -- the displays ------------------------------------------------------------------------------


class SilentProgress:
    """Shows nothing (the default of ``current()``)."""

    active = False

    @contextlib.contextmanager
    def task(self, name: str, total: int | None = None, *,
             label: str | None = None) -> Iterator[Task]:
        yield _NullTask()

    def note(self, message: str) -> None:
        return None


class PlainProgress:
    """One line per event on a text stream (stderr by default), for logs and CI.

    A task with a label says so when it opens (``backtest naive: starting 3 folds``); each
    ``advance`` writes one line: the labels of the open tasks, the count, the values, the
    elapsed time and, until the last step, the time left at the pace so far.

    Args:
        stream: where lines go (default: ``sys.stderr`` as it is when a line is written).
        clock: seconds, monotonic (default ``time.monotonic``; tests pass a fake one).

    Example:
        >>> progress = PlainProgress(stream=sys.stdout, clock=lambda: 0.0)
        >>> with progress.task("epoch", total=2) as task:
        ...     task.advance(loss=0.41)
        epoch 1/2 loss 0.41 (0 s, ~0 s left)
    """

    active = True

    def __init__(self, stream: TextIO | None = None, *, clock: Clock = time.monotonic):
        self._stream = stream
        self._clock = clock
        self._open: list[_State] = []

    @contextlib.contextmanager
    def task(self, name: str, total: int | None = None, *,
             label: str | None = None) -> Iterator[Task]:
        state = _State(name, None if total is None else int(total), label, self._clock())
        self._open.append(state)
        if label:  # a labelled task says what starts: its first line may be minutes away
            count = "" if state.total is None else (
                f" {state.total} {name}" + ("" if state.total == 1 else "s"))
            self._write(self._prefix(state) + f"starting{count}")
        try:
            yield _Task(state, self._report, self._clock)
        finally:
            self._open.remove(state)

    def note(self, message: str) -> None:
        """Writes ``message``, after the labels of the open tasks."""
        self._write("".join(f"{s.label}: " for s in self._open if s.label) + message)

    def _prefix(self, state: _State) -> str:
        outer = self._open[: self._open.index(state)] if state in self._open else []
        return "".join(f"{s.label}: " for s in [*outer, state] if s.label)

    def line(self, state: _State) -> str:
        """The line reporting ``state`` now (its context, count, values, elapsed and ETA)."""
        now = self._clock()
        text = self._prefix(state) + f"{state.name} {state.count()}"
        if state.detail:
            text += f" {state.detail}"
        if state.values:
            text += " " + format_values(state.values)
        timing = format_duration(state.elapsed(now))
        remaining = state.remaining(now)
        if remaining is not None and state.completed < (state.total or 0):
            timing += f", ~{format_duration(remaining)} left"
        return f"{text} ({timing})"

    def _report(self, state: _State, report: bool = True) -> None:
        if report:
            self._write(self.line(state))

    def _write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(text + "\n")
        stream.flush()


class RichProgress:
    """Live bars on a terminal (``rich``): one row per open task, with its values, elapsed time
    and ETA. A finished inner task's row goes away; the outermost one's last state stays.

    Args:
        console: a ``rich.console.Console`` (default: one on stderr).
        clock: seconds, monotonic (default ``time.monotonic``).
        auto_refresh: redraw a few times a second (the elapsed time ticks); False redraws only
            on events (tests).
    """

    active = True

    def __init__(self, console=None, *, clock: Clock = time.monotonic,
                 auto_refresh: bool = True):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        self._clock = clock
        self.console = console if console is not None else Console(stderr=True,
                                                                    highlight=False)
        display = self

        class _Timing(ProgressColumn):
            """``12 s · ~1 min 05 s left`` from the display's own clock and pace."""

            def render(self, task) -> Text:
                state = task.fields.get("state")
                if state is None:
                    return Text("")
                now = display._clock()
                text = format_duration(state.elapsed(now))
                remaining = state.remaining(now)
                if remaining is not None and state.completed < (state.total or 0):
                    text += f" · ~{format_duration(remaining)} left"
                return Text(text, style="progress.remaining")

        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[count]}", style="progress.download"),
            TextColumn("{task.fields[shown]}"),
            _Timing(),
            console=self.console,
            auto_refresh=auto_refresh,
            get_time=clock,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._open: list[tuple[_State, int]] = []

    @contextlib.contextmanager
    def task(self, name: str, total: int | None = None, *,
             label: str | None = None) -> Iterator[Task]:
        state = _State(name, None if total is None else int(total), label, self._clock())
        depth = len(self._open)
        if not self._open:
            self._bars.start()
        task_id = self._bars.add_task(self._description(state, depth), total=state.total,
                                      count=state.count(), shown="", state=state)
        self._open.append((state, task_id))
        try:
            yield _Task(state, lambda s, report=True: self._update(s, task_id, depth),
                        self._clock)
        finally:
            self._open.remove((state, task_id))
            state.finished = True
            if not self._open:
                self._bars.refresh()
                self._bars.stop()  # the outermost task's last state stays on screen
                self._bars.remove_task(task_id)
            else:
                self._bars.remove_task(task_id)

    @staticmethod
    def _description(state: _State, depth: int) -> str:
        return "  " * depth + (f"{state.label} · {state.name}" if state.label else state.name)

    def _update(self, state: _State, task_id, depth: int) -> None:
        shown = " ".join(part for part in (state.detail, format_values(state.values)) if part)
        self._bars.update(task_id, description=self._description(state, depth),
                          completed=state.completed, count=state.count(), shown=shown,
                          refresh=True)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


# -- the current display -----------------------------------------------------------------------

SILENT = SilentProgress()
_CURRENT: ContextVar[Progress] = ContextVar("forecast_progress", default=SILENT)


def current() -> Progress:
    """The display set by ``using`` in this context (``SilentProgress`` when none was)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(progress: Progress) -> Iterator[Progress]:
    """Makes ``progress`` the display of everything run inside the block.

    Example:
        >>> with using(PlainProgress()):
        ...     forecaster.fit(train, val)   # one line per epoch on stderr
    """
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        _CURRENT.reset(token)


def resolve(progress: Progress | None) -> Progress:
    """``progress`` itself, or the current display when it is None."""
    return progress if progress is not None else current()


def for_cli(*, as_json: bool = False, stream: TextIO | None = None,
            environ: Mapping[str, str] | None = None) -> Progress:
    """The display a command uses (see the module docstring for the rule).

    Args:
        as_json: the command prints JSON on stdout (``--json``): plain lines on stderr.
        stream: the stream progress goes to (default ``sys.stderr``); its ``isatty`` decides.
        environ: the environment (default ``os.environ``), for ``FORECAST_PROGRESS``.

    Returns:
        A ``RichProgress``, ``PlainProgress`` or ``SilentProgress``.
    """
    environ = os.environ if environ is None else environ
    mode = (environ.get(ENV_VAR) or "").strip().lower()
    if mode in ("off", "none", "0", "false", "silent"):
        return SILENT
    if mode == "plain":
        return PlainProgress(stream)
    if mode == "rich":
        return _rich(stream)
    target = stream if stream is not None else sys.stderr
    interactive = bool(getattr(target, "isatty", lambda: False)()) and \
        environ.get("TERM") != "dumb"
    if as_json or not interactive:
        return PlainProgress(stream)
    return _rich(stream)


def _rich(stream: TextIO | None) -> RichProgress:
    from rich.console import Console

    console = Console(file=stream, highlight=False) if stream is not None else None
    return RichProgress(console)


__all__ = [
    "ENV_VAR", "MODES", "PlainProgress", "Progress", "RichProgress", "SILENT", "SilentProgress",
    "Task", "current", "for_cli", "format_duration", "format_values", "resolve", "using",
]
