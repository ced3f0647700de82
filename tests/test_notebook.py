"""examples/notebook.ipynb, executed in a real Jupyter kernel with nbclient.

Every cell of a notebook runs inside ipykernel's running event loop, so this is also the
end-to-end proof that the sync client works inside a running loop.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"
KERNEL_NAME = "ecs-safe-test-python"

# Runs first, in the kernel: which interpreter, and whether a loop is running in the cell.
PROBE = """\
import asyncio, sys
print("executable:", sys.executable)
print("loop running:", asyncio.get_running_loop().is_running())
"""


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec naming this very interpreter (the venv's), found first on JUPYTER_PATH.

    The stock ``python3`` spec runs plain ``python``, which depends on PATH and on
    jupyter_client rewriting it; a spec of our own leaves nothing to chance.
    """
    spec = tmp_path / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "ecs-safe tests", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    # Opt in to jupyter_core's new paths, or it warns (and warnings are errors here).
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return KERNEL_NAME


def read_notebook() -> Any:
    return nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]  # untyped lib


@pytest.fixture
def executed(kernel_name: str) -> Any:
    notebook = read_notebook()
    probe = nbformat.v4.new_code_cell(PROBE)  # type: ignore[no-untyped-call]  # untyped lib
    notebook.cells.insert(0, probe)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    return notebook


def outputs(notebook: Any, marker: str) -> tuple[str, str]:
    """The text (streams) and HTML (rich displays) output by the cell whose source has marker."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and marker in c.source]
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    html = "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)
    return text, html


def test_committed_notebook_has_no_outputs() -> None:
    notebook = read_notebook()
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_notebook_runs_in_a_real_kernel(executed: Any) -> None:
    probe, _ = outputs(executed, "loop running")
    assert f"executable: {sys.executable}\n" in probe
    assert "loop running: True" in probe

    text, html = outputs(executed, "except PolicyViolationError")
    assert "Refused before any mutating call:" in text
    assert "no-running-tasks-unless-forced" in text
    assert "<table" in html
    assert "ContainerInstance" in html

    _, html = outputs(executed, "force=True")
    assert "DeregistrationResult: Deregistered, forced" in html

    text, html = outputs(executed, "drain_and_deregister")
    assert "DRAINING: 2 task(s) left" in text
    assert "DeregistrationResult: Deregistered" in html

    text, html = outputs(executed, "dry_run=True")
    assert "ok=False: 2 would go, 1 refused" in text
    assert "BatchResult: " in html
    assert html.count("would_deregister") == 2
    assert "refused" in html
    assert "<script" not in html
