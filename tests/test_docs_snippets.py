"""The docs: the build fails on any warning, and the API reference reads as Markdown."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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
