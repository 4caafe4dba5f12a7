"""The building blocks of the config schema, and the validator that walks them.

Every leaf is a :class:`Key` with a kind, a default (or ``required``), a range and
its help text; a :class:`Section` groups keys, a :class:`ListOf` is a list of
mappings.  The config's keys themselves are in :mod:`schema` (the one source).
:class:`Validator` walks a whole document and collects
*every* problem as ``At 'a.b': message``, so a user fixes their file in one go;
``${VAR}`` in any string is replaced from the environment first.

Hostile values are refused: control characters (only a ``multiline`` key may hold a
newline or a tab), numbers that are not finite or out of ``minimum``..``maximum``,
URLs without an http(s) scheme, a host and a valid port.  A problem never echoes a
secret: values of ``secret`` keys and of ``${VAR}`` whose name holds TOKEN,
PASSWORD, SECRET or KEY are collected in ``Validator.secrets`` and masked.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Command = tuple[str, ...]


SAME = object()  # Key.example: show the default


@dataclass(frozen=True)
class Key:
    """One leaf of the schema.  ``doc`` is its one-line help (the README's key reference,
    the comment beside it in config.example.yaml); ``note`` is prose shown above it in the
    example; ``example`` the value the example shows (``...``: elided) and ``commented``
    whether it shows it commented out."""

    kind: str  # str | int | number | bool | command | path | url | chat | choice | strlist
    doc: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    multiline: bool = False  # may hold newlines and tabs (notice templates)
    choices: tuple[str, ...] = ()
    must_exist: bool = False
    secret: bool = False
    note: str = ""
    example: Any = SAME
    commented: bool = False

    def shown(self) -> Any:
        """The value config.example.yaml shows."""
        return self.default if self.example is SAME else self.example


@dataclass(frozen=True)
class ListOf:
    """A list whose items are mappings of ``item``'s keys (errors name ``a[2].b``)."""

    item: dict[str, Key]
    doc: str = ""
    note: str = ""
    example: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Section:
    """A mapping of keys.  An ``optional`` top-level section that is absent is None (no
    defaults); ``commented``: config.example.yaml shows it commented out."""

    keys: Schema
    note: str = ""
    optional: bool = False
    commented: bool = False


Schema = Mapping[str, "Key | ListOf | Section"]

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_VAR = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
MAX_STRING = 4096  # characters in one string value


class Validator:
    def __init__(
        self,
        env: Mapping[str, str],
        *,
        home: Path | None = None,
    ) -> None:
        self.env = env
        self.home = home  # what ~ in a path means (None: this user's home)
        self.problems: list[str] = []
        self.secrets: list[str] = []  # values never to be shown (see secret_parts)
        self.given: list[str] = []  # dotted paths of the leaf keys the document sets

    def err(self, path: str, msg: str) -> None:
        self.problems.append(f"At '{_printable(path)}': {msg}")

    def section(self, schema: Schema, data: Any, path: str) -> dict[str, Any]:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.err(path or "<top>", f"expected a mapping, got {_typename(data)}")
            return {}
        out: dict[str, Any] = {}
        for key in data:
            if key not in schema:
                where = f"{path}.{key}" if path else str(key)
                where = where if len(where) <= 80 else where[:77] + "..."
                self.err(where, f"unknown key (expected one of: {', '.join(schema)})")
        for key, sub in schema.items():
            where = f"{path}.{key}" if path else key
            present = key in data and data[key] is not None
            if isinstance(sub, ListOf):
                out[key] = self.items(sub, data.get(key), where) if present else None
            elif isinstance(sub, Section):
                if sub.optional and not present:
                    out[key] = None
                else:
                    out[key] = self.section(sub.keys, data.get(key), where)
            elif not present:
                if sub.required:
                    self.err(where, "required key is missing")
                out[key] = self.leaf(sub, sub.default, where) if sub.default is not None else None
            else:
                self.given.append(where)
                out[key] = self.leaf(sub, data[key], where)
        return out

    def items(self, spec: ListOf, data: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(data, list):
            self.err(path, f"expected a list, got {_typename(data)}")
            return []
        return [self.section(spec.item, item, f"{path}[{i}]") for i, item in enumerate(data)]

    def leaf(self, key: Key, value: Any, path: str) -> Any:
        before = len(self.problems)
        value = self.expand(value, path)
        if len(self.problems) > before:  # an unset ${VAR}: one error is enough
            return None
        if key.kind == "path" and self.home and isinstance(value, str):
            value = _home_path(value, self.home)
        if key.secret and isinstance(value, str):
            self.secrets += secret_parts(value, url=key.kind == "url")
        check = CHECKS[key.kind]
        try:
            _check_text(key, value)
            result = check(key, value)
        except ValueError as exc:
            self.err(path, str(exc))
            return None
        number = isinstance(result, int | float) and not isinstance(result, bool)
        if number and key.minimum is not None and result < key.minimum:
            self.err(path, f"must be at least {key.minimum:g}, got {result:g}")
        elif number and key.maximum is not None and result > key.maximum:
            self.err(path, f"must be at most {key.maximum:g}, got {_short_number(result)}")
        if key.must_exist and isinstance(result, Path) and not _is_file(result):
            self.err(path, f"file not found: {result}")
        return result

    def expand(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            return [self.expand(v, path) for v in value]
        if not isinstance(value, str):
            return value

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.env:
                self.err(path, f"environment variable {name} is not set")
                return ""
            if _SECRET_VAR.search(name):
                self.secrets += secret_parts(self.env[name])
            return self.env[name]

        return _ENV_RE.sub(sub, value)


def secret_parts(value: str, *, url: bool = False) -> list[str]:
    """What to mask of a secret value: the value, and of a URL its path and its query."""
    out = [value]
    if url:
        try:
            parts = urlsplit(value)
        except ValueError:
            return out
        out += [p for p in (parts.path, parts.query) if len(p.strip("/")) >= 4]
    return out


def _home_path(value: str, home: Path) -> str:
    """``~`` and ``~/...`` as ``home`` sees them (another user's, for `ocf install`)."""
    if value == "~" or value.startswith("~/"):
        return str(home) + value[1:]
    return value


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, say
        return False


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes (a key name may hold them)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _short_number(value: float) -> str:
    return f"{value:.6g}"


def _check_text(key: Key, value: Any) -> None:
    """Refuse control characters and overlong strings (in lists too)."""
    texts = value if isinstance(value, list) else [value]
    pattern = _CONTROL_MULTILINE if key.multiline else _CONTROL
    for text in texts:
        if not isinstance(text, str):
            continue
        if len(text) > MAX_STRING:
            raise ValueError(f"too long ({len(text)} characters, at most {MAX_STRING})")
        found = pattern.search(text)
        if found:
            char = f"U+{ord(found.group()):04X}"
            raise ValueError(f"contains a control character ({char}): not allowed here")


def _typename(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _as_str(key: Key, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {_typename(value)}")
    return value


def _as_int(key: Key, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {_typename(value)}")
    return value


def _as_number(key: Key, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number of seconds, got {_typename(value)}")
    if isinstance(value, int) and abs(value) > 10**15:
        raise ValueError(f"must be at most {key.maximum or 10**15:g}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return float(value)


def _as_bool(key: Key, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_typename(value)}")
    return value


def _as_choice(key: Key, value: Any) -> str:
    if not isinstance(value, str) or value not in key.choices:
        shown = f", got {value!r}" if isinstance(value, str) and len(value) <= 40 else ""
        raise ValueError(f"expected one of {', '.join(key.choices)}{shown}")
    return value


def _as_path(key: Key, value: Any) -> Path:
    return Path(_as_str(key, value)).expanduser()


def _as_url(key: Key, value: Any) -> str:
    """An http(s) URL with a host and a valid port; the value is never echoed (a secret)."""
    text = _as_str(key, value)
    if re.search(r"\s", text):
        raise ValueError("expected an http:// or https:// URL, got one with a space in it")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for 99999 or abc
    except ValueError:
        raise ValueError(
            "expected an http:// or https:// URL with a valid port (1-65535)"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL (another scheme or none)")
    if not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    if port == 0:
        raise ValueError("expected an http:// or https:// URL with a valid port (1-65535)")
    return text


def _as_chat(key: Key, value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+|@\w{4,}", value.strip()):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    raise ValueError("expected a numeric chat id or @channelname")


def _as_command(key: Key, value: Any) -> Command:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        argv = [str(v) for v in value]
    else:
        raise ValueError(
            f"expected a command string or a list of arguments, got {_typename(value)}"
        )
    if not argv or not argv[0]:
        raise ValueError("command is empty")
    return tuple(argv)


def _as_strlist(key: Key, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a list of names, got {_typename(value)}")
    return tuple(value)


CHECKS: dict[str, Callable[[Key, Any], Any]] = {
    "strlist": _as_strlist,
    "str": _as_str,
    "int": _as_int,
    "number": _as_number,
    "bool": _as_bool,
    "choice": _as_choice,
    "path": _as_path,
    "url": _as_url,
    "chat": _as_chat,
    "command": _as_command,
}


def check_default(key: Key) -> Any:
    """``key``'s default as the validator returns it (None when it has none)."""
    if key.default is None:
        return None
    return CHECKS[key.kind](key, key.default)


def iter_keys(schema: Schema, prefix: str = "") -> list[tuple[str, Key]]:
    """Every leaf key of the schema as (dotted path, Key): for docs and tests."""
    out: list[tuple[str, Key]] = []
    for name, sub in schema.items():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(sub, ListOf):
            out += iter_keys(sub.item, path)
        elif isinstance(sub, Section):
            out += iter_keys(sub.keys, path)
        else:
            out.append((path, sub))
    return out
