"""The docs: the build fails on any warning, and the API reference reads as Markdown."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer.main
from pytest_examples import CodeExample, find_examples

import ecs_safe.cli

ROOT = Path(__file__).resolve().parent.parent
MKDOCS = Path(sys.executable).with_name("mkdocs")


def _griffe_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("griffe_docs", ROOT / "docs/_ext/griffe_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site_with_a_warning(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nnav:\n  - Home: index.md\n")
    return tmp_path


def test_quiet_hides_the_warning_from_strict(tmp_path: Path) -> None:
    # Why .ci/docs never passes --quiet: with it, a strict build "passes" with warnings.
    project = _site_with_a_warning(tmp_path)
    quiet = subprocess.run(
        [MKDOCS, "build", "--strict", "--quiet", "--site-dir", tmp_path / "site"],
        cwd=project,
        capture_output=True,
        check=False,
    )
    assert quiet.returncode == 0


def test_ci_docs_step_fails_on_a_warning(tmp_path: Path) -> None:
    project = _site_with_a_warning(tmp_path)
    run = subprocess.run(
        ["bash", ROOT / ".ci/docs", tmp_path / "site", MKDOCS],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "missing.md" in run.stdout


def test_ci_docs_step_passes_a_clean_site(tmp_path: Path) -> None:
    project = _site_with_a_warning(tmp_path)
    (project / "docs/index.md").write_text("# Home\n")
    run = subprocess.run(
        ["bash", ROOT / ".ci/docs", tmp_path / "site", MKDOCS],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_rest_literal_blocks_become_fenced_code() -> None:
    text = "Use it like this::\n\n    async with X() as x:\n        await x.go()\n\nThen more."
    assert _griffe_docs().fence_literal_blocks(text) == (
        "Use it like this:\n\n```python\nasync with X() as x:\n    await x.go()\n```\n\nThen more."
    )


def test_a_literal_block_that_is_not_python_is_text() -> None:
    text = "The tree::\n\n    A\n    └── B"
    assert _griffe_docs().fence_literal_blocks(text) == "The tree:\n\n```text\nA\n└── B\n```"


# --- every snippet runs ----------------------------------------------------------------------
# The convention (docs/index.md, "Code in these docs"): a python block is a complete program that
# runs against LocalEcs, unless its fence says ```python title="fragment"```; a fragment must still
# be valid Python (top-level await allowed, as in a notebook or `python -m asyncio`).

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = list(find_examples(*DOC_FILES))
PYTHON = [ex for ex in EXAMPLES if ex.prefix.split()[:1] in (["python"], ["py"])]
# pytest-examples collects only Python; shell blocks are found by their fence.
SHELL_BLOCK = re.compile(r"^ *```(?:bash|sh|console|shell)\b[^\n]*\n(.*?)^ *```", re.M | re.S)
SHELL = [
    pytest.param(match[1], id=f"{path.name}:{path.read_text()[: match.start()].count(chr(10)) + 1}")
    for path in DOC_FILES
    for match in SHELL_BLOCK.finditer(path.read_text())
]
# "ecs-safe CMD" where the command is invoked (not "pip install ecs-safe" or a path inside it).
ECS_SAFE_COMMAND = re.compile(r"(?:^|[\s/$(])ecs-safe\s+([a-z][\w-]*)")


def _is_fragment(example: CodeExample) -> bool:
    return example.prefix_settings().get("title") == "fragment"


def _example_id(example: CodeExample) -> str:
    return f"{example.path.name}:{example.start_line}"


def test_the_docs_have_complete_programs_and_shell_commands() -> None:
    # Guards the collection itself: a parser change that found nothing would pass every test.
    assert any(not _is_fragment(ex) for ex in PYTHON)
    assert any(ex.path.name == "README.md" for ex in PYTHON)
    assert SHELL


@pytest.mark.parametrize("example", PYTHON, ids=_example_id)
def test_python_snippet_runs(example: CodeExample, tmp_path: Path) -> None:
    if _is_fragment(example):
        compile(
            example.source,
            _example_id(example),
            "exec",
            flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        )
        return
    script = tmp_path / "snippet.py"
    script.write_text(example.source)
    # A fresh interpreter in an empty directory: the block must stand on its own.
    run = subprocess.run(
        [sys.executable, script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, (
        f"{_example_id(example)} is not a complete program (mark it ```python "
        f'title="fragment"``` if it is not meant to be one):\n{run.stderr}'
    )


@pytest.mark.parametrize("block", SHELL)
def test_shell_snippet_names_real_commands(block: str) -> None:
    commands = set(typer.main.get_command(ecs_safe.cli.app).commands)  # type: ignore[attr-defined]
    named = set(ECS_SAFE_COMMAND.findall(block))
    assert named <= commands, f"no such ecs-safe command: {sorted(named - commands)}"


def test_a_missing_command_is_caught() -> None:
    assert ECS_SAFE_COMMAND.findall(".venv/bin/ecs-safe undrain --cluster prod ID") == ["undrain"]
    assert ECS_SAFE_COMMAND.findall("pip install ecs-safe   # the SDK") == []


KUBECTL_DRAIN_FLAGS = [
    "--force",
    "--ignore-daemonsets",
    "--delete-emptydir-data",
    "--grace-period",
    "--timeout",
    "--dry-run",
    "--pod-selector",
    "--selector",
    "--skip-wait-for-delete-timeout",
    "--disable-eviction",
    "--chunk-size",
]


def test_the_kubectl_page_answers_every_drain_flag_and_is_in_the_nav() -> None:
    page = (ROOT / "docs/kubectl.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `--")]
    for flag in KUBECTL_DRAIN_FLAGS:
        row = next((r for r in rows if r.startswith(f"| `{flag}`")), None)
        assert row is not None, f"no row for kubectl drain {flag}"
        assert len([cell for cell in row.split("|") if cell.strip()]) == 3, row
    for verb in ("cordon", "uncordon"):
        assert f"`kubectl {verb} NODE`" in page
    assert "kubectl.md" in (ROOT / "mkdocs.yml").read_text()


IAM_ACTIONS = {
    "ecs:DescribeContainerInstances",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:DescribeServices",
    "ecs:UpdateContainerInstancesState",
    "ecs:DeregisterContainerInstance",
    "ecs:StopTask",
    "ecs:ListContainerInstances",
}


def test_readme_opens_with_two_one_line_commands_and_their_times() -> None:
    readme = (ROOT / "README.md").read_text()
    first = SHELL_BLOCK.search(readme)
    assert first is not None
    assert readme.index(first[0]) < readme.index("## ")  # before any section
    lines = first[1].strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("python3 -m venv .venv && ") for line in lines)
    intro = readme[readme.index(first[0]) + len(first[0]) : readme.index("**Take container")]
    assert re.search(r"\d+ ?s\b.*\d+ ?(s|min)\b", intro, re.S), "the time each command takes"


def test_readme_iam_policy_is_valid_json_naming_every_permission() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use it against your own AWS account") :]
    section = section[: section.index("\n## ", 1)]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    policy = json.loads(block[1])
    granted = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert granted == IAM_ACTIONS
    assert set(re.findall(r"ecs:[A-Za-z]+", section.replace(block[0], ""))) >= IAM_ACTIONS
    assert "--dry-run" in section
