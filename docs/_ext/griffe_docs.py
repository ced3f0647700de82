"""A griffe extension for the docs build: the API reference shows what a reader can use.

ecs-safe's docstrings are written to read well in ``help()`` and in an editor, which means two
reST habits that Markdown does not understand:

- a literal block introduced by ``::`` (``Use it like this::`` then an indented block), which
  Markdown renders as a stray ``::`` and a paragraph of code; it becomes a fenced code block
  (``python`` when the block parses as Python, ``text`` otherwise);
- defaults given as named constants (``timeout: float = _drain.DEFAULT_TIMEOUT``), which griffe
  reads from the source as names, private module aliases included; each default that is a name
  becomes the value it has at run time (``600.0``), when that value is a plain literal.

Loaded by mkdocstrings (``extensions:`` in mkdocs.yml); nothing in ``ecs_safe`` imports it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from typing import Any

import griffe

# A line that ends a paragraph with reST's literal-block marker: "text::", "text ::" or "::".
_LITERAL_MARKER = re.compile(r"^(?P<indent>\s*)(?P<text>.*?)\s*::\s*$")
# Values whose repr is what a reader would type: anything else keeps its name.
_PLAIN = (bool, int, float, str, type(None))


def _is_python(block: str) -> bool:
    try:
        compile(
            block, "<docstring>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
    except SyntaxError:
        return False
    return True


def fence_literal_blocks(text: str) -> str:
    """Rewrite every reST ``::`` literal block of a docstring as a fenced Markdown code block."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        marker = _LITERAL_MARKER.match(lines[i])
        if marker is None or lines[i].strip().startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = len(marker["indent"])
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        k = j
        while k < len(lines) and (
            not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent
        ):
            k += 1
        while k > j and not lines[k - 1].strip():
            k -= 1
        if k == j:  # "::" with no indented block after it: not a literal block
            out.append(lines[i])
            i += 1
            continue
        lead = marker["indent"]
        if marker["text"]:
            # reST keeps one colon of "text::" and drops "text ::" entirely.
            keep_colon = not lines[i].rstrip().endswith(" ::")
            out.append(f"{lead}{marker['text']}{':' if keep_colon else ''}")
            out.append("")
        block = textwrap.dedent("\n".join(lines[j:k]))
        language = "python" if _is_python(block) else "text"
        out.append(f"{lead}```{language}")
        out.extend(f"{lead}{line}" if line else "" for line in block.splitlines())
        out.append(f"{lead}```")
        i = k
    return "\n".join(out)


def _runtime_object(path: str) -> Any:
    """The live object at a dotted path (``pkg.module.Class.method``), or None."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


def _is_literal(expression: object) -> bool:
    try:
        ast.literal_eval(str(expression))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _signature_default(target: Any, name: str) -> Any:
    """The default of parameter ``name`` of ``target``'s signature, or None."""
    try:
        parameter = inspect.signature(target).parameters.get(name)
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def _resolve_defaults(func: griffe.Function) -> None:
    named = [p for p in func.parameters if p.default is not None and not _is_literal(p.default)]
    if not named:
        return
    target = _runtime_object(func.path)
    if target is None and func.name == "__init__" and func.parent is not None:
        target = _runtime_object(func.parent.path)  # a synthesized __init__ (dataclass)
    for parameter in named:
        live = _signature_default(target, parameter.name)
        if isinstance(live, _PLAIN) and live is not None:
            parameter.default = repr(live)


def _resolve_value(attribute: griffe.Attribute) -> None:
    # An instance attribute's source value is an expression of __init__'s arguments; only
    # module and class attributes have a value to show.
    if not attribute.labels & {"class-attribute", "module-attribute"} or attribute.value is None:
        return
    if _is_literal(attribute.value):
        return
    live = _runtime_object(attribute.path)
    if not isinstance(live, _PLAIN) and attribute.parent is not None and attribute.parent.is_class:
        # A field of a slotted dataclass is a descriptor on the class; its default is in the
        # signature (griffe's dataclass support builds __init__ from this value afterwards).
        live = _signature_default(_runtime_object(attribute.parent.path), attribute.name)
    if isinstance(live, _PLAIN):
        attribute.value = repr(live)


def _walk(obj: griffe.Object | griffe.Alias) -> None:
    if isinstance(obj, griffe.Alias):
        return  # documented where it is defined
    if obj.docstring is not None:
        obj.docstring.value = fence_literal_blocks(obj.docstring.value)
    if isinstance(obj, griffe.Function):
        _resolve_defaults(obj)
    elif isinstance(obj, griffe.Attribute):
        _resolve_value(obj)
    for member in obj.members.values():
        _walk(member)


class EcsSafeDocs(griffe.Extension):
    """Fence reST literal blocks and show constant defaults as their values."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the whole package once it is loaded (dataclass ``__init__`` included)."""
        _walk(pkg)
