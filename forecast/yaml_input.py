"""Read user YAML safely: bounded before anything is built from it.

``yaml.safe_load`` refuses to run code, but not to run out of memory: a file of under a kilobyte
whose anchors alias anchors ("billion laughs") expands to a billion nodes as soon as anything
walks it (validation, error messages, hashing), and a few thousand nested brackets overflow the
composer's recursion. Every YAML a user hands the toolkit (a pipeline file, a ``--set`` value) is
therefore first walked as a stream of parser events — aliases are cheap there, nothing is
expanded — and refused when it is larger than ``MAX_BYTES``, nests deeper than ``MAX_DEPTH``,
holds more than ``MAX_ALIASES`` aliases, or would expand to more than ``MAX_NODES`` nodes or
``MAX_CHARS`` characters of text. Only then is it composed and loaded with ``yaml.safe_load``.

Example:
    >>> load_yaml_text("window: {horizon: 24}", source="--set")
    {'window': {'horizon': 24}}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from forecast.errors import ConfigError, cut

#: the largest YAML file read (a pipeline file is a few kilobytes).
MAX_BYTES = 1 << 20
#: the deepest nesting of mappings and lists (a pipeline file nests three or four).
MAX_DEPTH = 50
#: the most aliases (``*name``) in one text.
MAX_ALIASES = 100
#: the most nodes (scalars, lists, mappings) the text stands for with every alias expanded.
MAX_NODES = 100_000
#: the most characters of scalars the text stands for with every alias expanded.
MAX_CHARS = 10 * MAX_BYTES
#: the longest integer read (Python refuses to convert more than 4300 digits).
MAX_DIGITS = 4000
_INT = re.compile(r"[-+]?[0-9][0-9_:]*")  # what the YAML 1.1 resolver reads as a decimal int


def _refuse(source: str, mark, problem: str) -> ConfigError:
    where = f", line {mark.line + 1}" if mark is not None else ""
    return ConfigError(f"{source}{where}: {problem}")


def check_yaml(text: str, *, source: str) -> None:
    """Walks the parser events of ``text`` and refuses it when it is too big, too deep or its
    aliases expand too far; nothing is composed or constructed.

    Args:
        text: the YAML text.
        source: how messages name it: the file's path, or ``--set 'key=value'``.

    Raises:
        ConfigError: a bound is crossed (the message names ``source``, the line, the limit and
            what to do), or the text is not valid YAML (the line and the problem).
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters of YAML is over the limit of "
                          f"{MAX_BYTES:,}; a pipeline file is a few kilobytes: check that this is "
                          "the right file.")
    depth = aliases = nodes = chars = 0
    stack: list[list] = []  # per open collection: [anchor, nodes, chars] it stands for
    anchors: dict[str, tuple[int, int] | None] = {}  # None: still open (an alias inside it)

    def add(n: int, c: int, mark, *, to_parent: bool = True) -> None:
        nonlocal nodes, chars
        nodes, chars = nodes + n, chars + c
        if stack and to_parent:
            stack[-1][1] += n
            stack[-1][2] += c
        if nodes > MAX_NODES and not aliases:
            raise _refuse(source, mark, f"this YAML holds more than {MAX_NODES:,} values; a "
                                        "pipeline file holds a few dozen: check that this is the "
                                        "right file.")
        if nodes > MAX_NODES:
            raise _refuse(source, mark, f"with its aliases expanded this YAML stands for more "
                                        f"than {MAX_NODES:,} values (an alias bomb?); write the "
                                        "values out instead of aliasing aliases.")
        if chars > MAX_CHARS:
            raise _refuse(source, mark, f"with its aliases expanded this YAML stands for more "
                                        f"than {MAX_CHARS:,} characters of text; write the "
                                        "values out instead of aliasing long ones.")

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            mark = event.start_mark
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _refuse(source, mark, f"more than {MAX_ALIASES} YAML aliases (*name); "
                                                "write the values out instead.")
                if event.anchor in anchors and anchors[event.anchor] is None:
                    raise _refuse(source, mark, f"the alias *{cut(event.anchor, 40)} "
                                                "refers to a node that contains it (an endless "
                                                "value); write the value out instead.")
                # an undefined alias is left to the loader, which names it
                add(*(anchors.get(event.anchor) or (1, 0)), mark)
            elif isinstance(event, yaml.ScalarEvent):
                if event.style is None and len(event.value) > MAX_DIGITS and _INT.fullmatch(
                        event.value):  # int() refuses more than 4300 digits, without a line
                    raise _refuse(source, mark, f"a number of more than {MAX_DIGITS:,} digits; "
                                                "write a shorter one.")
                add(1, len(event.value), mark)
                if event.anchor is not None:
                    anchors[event.anchor] = (1, len(event.value))
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _refuse(source, mark, f"YAML nested more than {MAX_DEPTH} levels deep; "
                                                "a pipeline file needs a few: flatten it.")
                add(1, 0, mark, to_parent=False)  # the parent gets it with the rest, at its end
                stack.append([event.anchor, 1, 0])
                if event.anchor is not None:
                    anchors[event.anchor] = None
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                anchor, n, c = stack.pop()
                if stack:  # the parent stands for its child's values too
                    stack[-1][1] += n
                    stack[-1][2] += c
                if anchor is not None:
                    anchors[anchor] = (n, c)
    except yaml.YAMLError as exc:
        raise ConfigError.from_yaml(source, exc) from None


def load_yaml_text(text: str, *, source: str, compose: bool = False) -> Any:
    """``yaml.safe_load(text)`` once ``check_yaml`` has passed it.

    Args:
        text: the YAML text.
        source: how messages name it (a file's path, ``--set 'key=value'``).
        compose: also return the composed node tree (``yaml.compose``), for line numbers.

    Returns:
        The loaded value, or ``(value, node)`` with ``compose``.

    Raises:
        ConfigError: the text crosses a bound of ``check_yaml`` or is not valid YAML.
    """
    check_yaml(text, source=source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader) if compose else None
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError.from_yaml(source, exc) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{source}: a value cannot be read ({cut(str(exc), 120)}); write it "
                          "shorter.") from None
    return (data, node) if compose else data


def read_yaml_text(path, *, what: str = "pipeline file") -> str:
    """The text of the YAML file ``path``, refusing one larger than ``MAX_BYTES`` before
    reading the rest of it.

    Args:
        path: the file.
        what: what messages call it ("pipeline file").

    Raises:
        ConfigError: the file is missing, not a regular file, too large, unreadable or not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist; give the path of a YAML file such as "
                          "pipelines/quickstart.yaml.")
    if not path.is_file():
        raise ConfigError(f"{what} {path} is not a regular file; give the path of a YAML file "
                          "such as pipelines/quickstart.yaml.")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{what} {path} is larger than the limit of {MAX_BYTES:,} bytes for "
                          "YAML; a pipeline file is a few kilobytes: check that this is the "
                          "right file.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as "
                          "UTF-8.") from None


def read_yaml(path, *, what: str = "pipeline file", compose: bool = False) -> Any:
    """Reads a user's YAML file with every bound of this module.

    Args:
        path: the file.
        what: what messages call it.
        compose: also return the composed node tree (for line numbers).

    Returns:
        The loaded value, or ``(value, node)`` with ``compose``.

    Raises:
        ConfigError: see ``read_yaml_text`` and ``check_yaml``.
    """
    return load_yaml_text(read_yaml_text(path, what=what), source=str(path), compose=compose)
