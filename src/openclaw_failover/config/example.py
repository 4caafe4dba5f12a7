"""config.example.yaml and the README's key reference, rendered from the schema.

``python -m openclaw_failover.config.example`` prints the example;
``--write`` (``make config-docs``) rewrites ``config.example.yaml``, its packaged copy
``src/openclaw_failover/config/example.yaml`` and the README's key reference (between
``<!-- config-keys:start -->`` and ``<!-- config-keys:end -->``); ``--check`` exits 1
when one of them is not what the schema gives.  Each key's ``doc`` becomes the comment
beside it, its ``note`` the comment above it; optional sections and keys marked
``commented`` are shown commented out.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from openclaw_failover.config.schema import PREAMBLE, SCHEMA
from openclaw_failover.config.validate import Key, ListOf, Schema, Section

COLUMN = 35  # where a comment beside a value starts
WIDTH = 95  # comments are wrapped to this; help that does not fit beside a long value goes above
START, END = "<!-- config-keys:start -->", "<!-- config-keys:end -->"
_PLAIN = re.compile(r"[A-Za-z0-9~/_.][A-Za-z0-9 ~/_.:@+%-]*")

Line = tuple[int, str, str]  # (indent, code or "# comment", comment beside it)


def render_example() -> str:
    """The whole config.example.yaml."""
    out = [_comment_block(0, PREAMBLE), ""]
    for name, node in SCHEMA.items():
        out += [_finish(line) for line in _node(name, node, 0, commented=False)]
        out.append("")
    return "\n".join(out[:-1]) + "\n"


def _node(name: str, node: Key | ListOf | Section, indent: int, *, commented: bool) -> list[Line]:
    """The lines of one key or section; one marked ``commented`` is commented out whole
    (``# `` at its own indent, so uncommenting the lines gives valid YAML)."""
    notes = _notes(indent, node.note)
    if isinstance(node, Key):
        lines = _key(name, node, indent)
        _, code, beside = lines[0]
        length = indent + len(code) + (2 if commented or node.commented else 0)
        if beside and _too_long(length, beside):  # the help goes above, before the note
            notes = _notes(indent, "\n".join(textwrap.wrap(beside, WIDTH - indent - 2))) + notes
            lines[0] = (indent, code, "")
    elif isinstance(node, ListOf):
        lines = [(indent, f"{name}:", ""), *_items(node, indent + 2)]
    else:
        lines = [(indent, f"{name}:", "")]
        for child, sub in node.keys.items():
            lines += _node(child, sub, indent + 2, commented=False)
    if node_commented(node) and not commented:
        lines = [(indent, "# " + " " * (i - indent) + code, b) for i, code, b in lines]
    return notes + lines


def node_commented(node: Key | ListOf | Section) -> bool:
    return not isinstance(node, ListOf) and node.commented


def _key(name: str, key: Key, indent: int) -> list[Line]:
    value = key.shown()
    if value is None:
        raise ValueError(f"{name}: no default and no example to show")
    beside = _beside(key)
    if isinstance(value, list) and value:
        return [(indent, f"{name}:", beside), *((indent, f"  - {_scalar(v)}", "") for v in value)]
    return [(indent, f"{name}: {_scalar(value)}", beside)]


def _items(spec: ListOf, indent: int) -> list[Line]:
    """The example's list items; the first one carries the keys' help."""
    lines: list[Line] = []
    for n, item in enumerate(spec.example):
        for i, (name, value) in enumerate(item.items()):
            dash = "- " if i == 0 else "  "
            beside = _beside(spec.item[name]) if n == 0 else ""
            lines.append((indent, f"{dash}{name}: {_scalar(value)}", beside))
    return lines


def _beside(key: Key) -> str:
    text = f"required: {key.doc}" if key.required else key.doc
    shown = key.shown()
    if key.default not in (None, []) and shown is not ... and shown != key.default:
        text += f" (default: {_scalar(key.default)})"
    return text


def _notes(indent: int, note: str) -> list[Line]:
    """A note's lines as written (their breaks and indents are part of the text)."""
    return [(indent, f"# {line}".rstrip(), "") for line in note.splitlines()]


def _too_long(length: int, beside: str) -> bool:
    """A value line past the comment column whose help does not fit beside it."""
    column = max(COLUMN, length + 3)
    return column > COLUMN and column + 2 + len(beside) > WIDTH


def _comment_block(indent: int, text: str) -> str:
    return "\n".join(_finish(line) for line in _notes(indent, text))


def _finish(line: Line) -> str:
    indent, code, beside = line
    text = " " * indent + code
    if not beside:
        return text
    column = max(COLUMN, len(text) + 3)
    parts = textwrap.wrap(beside, max(20, WIDTH - column - 2))
    first = text.ljust(column) + f"# {parts[0]}"
    return "\n".join([first, *(" " * column + f"# {p}" for p in parts[1:])])


def _scalar(value: Any) -> str:
    """One value in YAML, plain where that reads back the same, else double-quoted."""
    if value is ...:
        return "..."
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.fullmatch(text) and ": " not in text and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


# --------------------------------------------------------------------------- README


def render_reference() -> str:
    """The README's key reference: one table row per key, from the schema."""
    optional = [f"`{n}`" for n, s in SCHEMA.items() if isinstance(s, Section) and s.optional]
    rows = [
        "Every key, from the schema (`src/openclaw_failover/config/schema.py`; regenerate "
        "this table and `config.example.yaml` with `make config-docs`). The sections "
        f"{', '.join(optional)} and the list `files` are optional; a key marked required "
        "is required in its section.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    rows += [_row(path, key) for path, key in _keys(SCHEMA, "")]
    return "\n".join(rows) + "\n"


def _keys(schema: Schema, prefix: str) -> list[tuple[str, Key]]:
    out: list[tuple[str, Key]] = []
    for name, node in schema.items():
        path = f"{prefix}{name}"
        if isinstance(node, Section):
            out += _keys(node.keys, f"{path}.")
        elif isinstance(node, ListOf):
            out += _keys(node.item, f"{path}[].")
        else:
            out.append((path, node))
    return out


def _row(path: str, key: Key) -> str:
    if key.required:
        default = "required"
    elif key.default is None or key.default == []:
        default = "none"
    else:
        default = f"`{_scalar(key.default)}`"
    cells = [f"`{path}`", _type(key), default, key.doc]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _type(key: Key) -> str:
    kind = {"strlist": "list of strings", "choice": " or ".join(key.choices)}.get(
        key.kind, key.kind
    )
    if key.minimum is not None and key.maximum is not None:
        kind += f", {_number(key.minimum)}-{_number(key.maximum)}"
    extras = [e for e, on in (("must exist", key.must_exist), ("secret", key.secret)) if on]
    return kind + "".join(f", {e}" for e in extras)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def readme_with_reference(readme: str) -> str:
    """``readme`` with the text between the markers replaced by the key reference."""
    start, end = readme.index(START) + len(START), readme.index(END)
    return readme[:start] + "\n" + render_reference() + readme[end:]


# --------------------------------------------------------------------------- files


def targets(root: Path) -> dict[Path, str]:
    """Each generated file under the repository ``root`` and what it must hold."""
    example = render_example()
    readme = root / "README.md"
    return {
        root / "config.example.yaml": example,
        root / "src" / "openclaw_failover" / "config" / "example.yaml": example,
        readme: readme_with_reference(readme.read_text(encoding="utf-8")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stdout.write(render_example())
        return 0
    if args[0] not in ("--write", "--check") or len(args) > 2:
        sys.stderr.write(
            "usage: python -m openclaw_failover.config.example [--write|--check [ROOT]]\n"
        )
        return 2
    root = Path(args[1] if len(args) > 1 else ".")
    stale = [p for p, text in targets(root).items() if p.read_text(encoding="utf-8") != text]
    if args[0] == "--check":
        for path in stale:
            sys.stderr.write(f"{path} is not what the schema gives: run make config-docs\n")
        return 1 if stale else 0
    for path, text in targets(root).items():
        if path in stale:
            path.write_text(text, encoding="utf-8")
            sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
