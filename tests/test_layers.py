"""The import graph is a decision: lower layers never import upper ones, privates stay home.

Parsed with `ast`, so every import counts: module level, inside ``if TYPE_CHECKING:`` and inside
functions. The layers, top to bottom (docs/architecture.md draws them):

    interfaces   ecs_safe (the package's facade), cli / ecs_safe.cli.*, local / ecs_safe.local.*
    sync         sync
    client       client
    workflows    drain, fleet, replace, termination
    gate         _gate, ownership, steady
    calls        _calls, _checks, _targets, _poller, _task_events, _aws_calls
    transport    _transport
    foundation   everything else: errors, models, policy, results, retry, ratelimit, audit, ...
    constants    _constants (imports nothing from the package)

A module may import its own layer and the layers below it. No module may use another ecs_safe
module's private name (``from ecs_safe.x import _name`` or ``x._name``); importing a private
*module* (``ecs_safe._calls``) is how the package is built and is fine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ecs_safe"

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("constants", frozenset({"_constants"})),
    ("transport", frozenset({"_transport"})),
    (
        "calls",
        frozenset({"_calls", "_checks", "_targets", "_poller", "_task_events", "_aws_calls"}),
    ),
    ("gate", frozenset({"_gate", "ownership", "steady"})),
    ("workflows", frozenset({"drain", "fleet", "termination", "autoscaling", "replace", "worker"})),
    ("client", frozenset({"client"})),
    ("sync", frozenset({"sync"})),
    ("interfaces", frozenset({"__init__", "__main__", "cli", "local", "aws_lambda"})),
)
FOUNDATION = 0.5  # between constants (0) and transport (1)


def _top(module: str) -> str:
    """The first component below ``ecs_safe`` (``cli`` for ``cli.render``)."""
    return module.split(".", 1)[0]


def rank(module: str) -> float:
    """The layer of a module given relative to the package (``cli.render``, ``_gate``)."""
    top = _top(module)
    for number, (_name, members) in enumerate(LAYERS):
        if top in members:
            return number
    return FOUNDATION


def layer_name(module: str) -> str:
    """The layer's name, for messages."""
    value = rank(module)
    return "foundation" if value == FOUNDATION else LAYERS[int(value)][0]


def package_modules() -> dict[str, Path]:
    """Every module of the package, named relative to it (packages such as cli/ included)."""
    modules: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        modules[".".join(parts)] = path
    return modules


@dataclass(frozen=True)
class Import:
    """One import found in a module: the ecs_safe module imported, and the names taken."""

    line: int
    target: str  # relative to the package: "" is the package itself
    names: tuple[str, ...]


def _package_of(module: str) -> list[str]:
    """The package a module's relative imports start from, as dotted parts."""
    if module == "__init__":
        return ["ecs_safe"]
    parts = module.split(".")
    path = MODULES.get(module)
    if path is not None and path.name == "__init__.py":
        return ["ecs_safe", *parts]
    return ["ecs_safe", *parts[:-1]]


def _resolve(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute module of a ``from ... import`` (relative imports included)."""
    if node.level == 0:
        return node.module
    base = _package_of(module)
    parent = base[: len(base) - (node.level - 1)]
    return ".".join([*parent, node.module] if node.module else parent)


def imports_of(module: str, tree: ast.AST) -> Iterator[Import]:
    """Every import of an ecs_safe module in ``tree``, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "ecs_safe" or alias.name.startswith("ecs_safe."):
                    target = alias.name.removeprefix("ecs_safe").lstrip(".") or "__init__"
                    yield Import(node.lineno, target, ())
        elif isinstance(node, ast.ImportFrom):
            absolute = _resolve(module, node)
            if absolute is None or not _in_package(absolute):
                continue
            target = absolute.removeprefix("ecs_safe").lstrip(".")
            names = tuple(alias.name for alias in node.names)
            if target == "":
                # `from ecs_safe import drain` imports a module; `from ecs_safe import X` any
                # other name comes from the package's facade (`__init__`), the top layer.
                # The package's metadata (`__version__`) belongs to no layer.
                for name in names:
                    if name in MODULES:
                        yield Import(node.lineno, name, ())
                    elif not (name.startswith("__") and name.endswith("__")):
                        yield Import(node.lineno, "__init__", (name,))
            else:
                yield Import(node.lineno, target, names)


def _in_package(absolute: str) -> bool:
    return absolute == "ecs_safe" or absolute.startswith("ecs_safe.")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_bindings(module: str, tree: ast.AST, modules: dict[str, Path]) -> dict[str, str]:
    """Local names bound to ecs_safe modules (``from ecs_safe import drain as _drain``)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            absolute = _resolve(module, node)
            if absolute is None or not _in_package(absolute):
                continue
            prefix = absolute.removeprefix("ecs_safe").lstrip(".")
            for alias in node.names:
                candidate = f"{prefix}.{alias.name}" if prefix else alias.name
                if candidate in modules:
                    bound[alias.asname or alias.name] = candidate
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name.startswith("ecs_safe."):
                    bound[alias.asname] = alias.name.removeprefix("ecs_safe.")
    return bound


def private_uses(module: str, tree: ast.AST, modules: dict[str, Path]) -> Iterator[str]:
    """Uses of another module's private names: imported by name, or read as an attribute."""
    for found in imports_of(module, tree):
        if _top(found.target) == _top(module):
            continue  # a package's own files (cli/*) share its privates
        for name in found.names:
            if _is_private(name) and f"{found.target}.{name}" not in modules:
                yield f"line {found.line}: from ecs_safe.{found.target} import {name}"
    bindings = module_bindings(module, tree, modules)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bindings
            and _is_private(node.attr)
            and _top(bindings[node.value.id]) != _top(module)
        ):
            yield f"line {node.lineno}: {node.value.id}.{node.attr} ({bindings[node.value.id]})"


MODULES = package_modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    upward = [
        f"line {found.line}: {found.target} ({layer_name(found.target)})"
        for found in imports_of(module, tree)
        if rank(found.target) > rank(module)
    ]
    assert not upward, (
        f"ecs_safe.{module} ({layer_name(module)}) imports from a layer above it: {upward}"
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_uses_another_modules_private_names(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    uses = list(private_uses(module, tree, MODULES))
    assert not uses, f"ecs_safe.{module} uses private names of other modules: {uses}"


def test_constants_is_a_leaf() -> None:
    tree = ast.parse(MODULES["_constants"].read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"typing", "__future__"}, imported


def test_the_workflows_and_the_layers_below_never_import_the_client_sync_or_cli() -> None:
    # The rule above, spelt out for the modules the issue names, so that a change of LAYERS
    # cannot quietly allow it.
    lower = [m for m in MODULES if rank(m) <= rank("drain")]
    assert {"drain", "fleet", "_gate", "_calls", "_transport"} <= set(lower)
    for module in lower:
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        upper = [
            f.target
            for f in imports_of(module, tree)
            if _top(f.target) in {"client", "sync", "cli"}
        ]
        assert not upper, f"ecs_safe.{module} imports {upper}"


# ----------------------------------------------------------------------------- the checker


def _check(module: str, source: str) -> tuple[list[str], list[str]]:
    tree = ast.parse(source)
    upward = [f.target for f in imports_of(module, tree) if rank(f.target) > rank(module)]
    return upward, list(private_uses(module, tree, MODULES))


def test_the_checker_sees_imports_under_type_checking_and_in_functions() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ecs_safe.client import EcsSafeClient\n"
        "def f():\n"
        "    import ecs_safe.sync\n"
        "    from ecs_safe.cli import app\n"
    )
    upward, _ = _check("drain", source)
    assert sorted(upward) == ["cli", "client", "sync"]


def test_the_checker_sees_relative_imports_and_package_imports() -> None:
    upward, _ = _check("_gate", "from . import fleet\nfrom .client import EcsSafeClient\n")
    assert sorted(upward) == ["client", "fleet"]
    upward, _ = _check("fleet", "from ecs_safe import EcsSafeClient, __version__\n")
    assert upward == ["__init__"], "a name from the facade is an import of the top layer"
    upward, _ = _check("cli.render", "from .. import client\nfrom ..sync import X\n")
    assert upward == [], "cli is the top layer: it may import everything"


def test_the_checker_sees_private_names_imported_or_read() -> None:
    source = (
        "from ecs_safe import drain as _drain\n"
        "from ecs_safe._validation import _ID_RE, instance_id_of\n"
        "x = _drain._poll\n"
        "y = _drain.DEFAULT_TIMEOUT\n"
        "from ecs_safe import _events\n"
        "_events.logger\n"
    )
    _, uses = _check("client", source)
    assert uses == [
        "line 2: from ecs_safe._validation import _ID_RE",
        "line 3: _drain._poll (drain)",
    ]


def test_cli_and_local_count_as_packages_too() -> None:
    assert rank("cli") == rank("cli.render") == rank("local.backend") == rank("__init__")
    assert rank("_constants") < rank("errors") < rank("_transport") < rank("_calls")
    assert rank("_calls") < rank("_gate") < rank("drain") < rank("client") < rank("sync")
