"""Read a YAML document that a person wrote, refusing what cannot be meant.

PyYAML's ``safe_load`` builds no objects, but still accepts what a config file never
needs and what can hurt: aliases (``*a``: a few lines expand to billions of entries
once walked), duplicate keys (silently, the last one wins), nesting deep enough to
overflow the stack, huge documents and text that is not UTF-8.  Each is refused here
with one line (:class:`Refused`, a ValueError) naming the line and column.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1024 * 1024  # a config file is a few kB
MAX_DEPTH = 32  # nested mappings/lists


class Refused(ValueError):
    """The document cannot be used; the message is one line for the user."""


def _where(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases or duplicate keys, with a depth limit."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise Refused(f"YAML aliases (*name) are not allowed{_where(event.start_mark)}")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise Refused(f"nested deeper than {MAX_DEPTH} levels{_where(mark)}")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor says so below
                continue
            if duplicate:
                shown = str(key) if len(str(key)) <= 40 else str(key)[:37] + "..."
                raise Refused(f"duplicate key {shown!r}{_where(key_node.start_mark)}")
        return super().construct_mapping(node, deep=deep)


def load(data: bytes) -> Any:
    """The document in ``data``; raise :class:`Refused` with one line when it is unusable."""
    if len(data) > MAX_BYTES:
        raise Refused(f"too large ({len(data)} bytes, at most {MAX_BYTES})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"not UTF-8 text (byte {exc.start} is not valid UTF-8)") from None
    if "\x00" in text:
        raise Refused("not a text file (it holds a NUL byte)")
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader  # nosec B506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise Refused(f"not valid YAML{_where(mark)}: {problem}") from None
    except RecursionError:
        raise Refused(f"nested deeper than {MAX_DEPTH} levels") from None
