"""examples/notebook.ipynb, executed in a real Jupyter kernel with nbclient.

Every cell of a notebook runs inside ipykernel's running event loop, so this is also the
end-to-end proof that the sync client works inside a running loop.
"""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from ecs_safe import PolicyViolationError
from ecs_safe._html import instances_table
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.policy import Decision, Violation
from ecs_safe.results import BatchResult, InstanceOutcome

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

    _, html = outputs(executed, "instances_table(everything)")
    listed = Parsed(html)
    assert "5 container instance(s)" in listed.captions
    assert "ContainerInstance" in listed.captions  # and one instance on its own

    text, html = outputs(executed, "except PolicyViolationError")
    assert "Refused before any mutating call:" in text
    assert "no-running-tasks-unless-forced" in text
    # The refusal's own view: its blocker, and the instance as it was seen.
    refused = Parsed(html)
    assert "PolicyViolationError: refused before any mutating call" in refused.captions
    assert "no-running-tasks-unless-forced" in refused.cells
    assert "Instance as seen" in refused.captions
    assert "ACTIVE" in refused.cells

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


# --------------------------------------------------------------------------- the HTML views

ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0123456789abcdef0123456789abcdef"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/fedcba9876543210fedcba9876543210"
EVIL = '<script>alert("x")</script>&'


class Parsed(HTMLParser):
    """Every element with its attributes, and the text of each table cell."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[str] = []
        self.captions: list[str] = []
        self._open: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th", "caption"):
            self._open.append(tag)
            (self.captions if tag == "caption" else self.cells).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "caption") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            target = self.captions if self._open[-1] == "caption" else self.cells
            target[-1] += data


def refusal() -> PolicyViolationError:
    instance = ContainerInstance.model_validate(
        {
            "containerInstanceArn": ARN,
            "ec2InstanceId": "i-0123456789abcdef0",
            "status": "ACTIVE",
            "runningTasksCount": 1,
        }
    )
    task = Task.from_api({"taskArn": TASK_ARN, "lastStatus": "RUNNING", "group": EVIL})
    decision = Decision.refuse(
        Violation("no-running-tasks-unless-forced", f"1 task runs {EVIL}"),
        Violation("protect-standalone-tasks", "a standalone task would be orphaned"),
    )
    return PolicyViolationError(
        "refused", decision=decision, container_instance=instance, tasks=[task]
    )


def test_a_refusal_shows_every_blocker_and_the_tasks_seen_escaped() -> None:
    markup = refusal()._repr_html_()
    parsed = Parsed(markup)
    assert not [tag for tag, _ in parsed.tags if tag == "script"]
    assert "<script>" not in markup
    assert "no-running-tasks-unless-forced" in parsed.cells
    assert f"1 task runs {EVIL}" in parsed.cells  # the text survives, escaped, as text
    assert "protect-standalone-tasks" in parsed.cells
    # The task: short exact ID, its kind and last status; the full ARN on hover.
    assert "fedcba9876543210fedcba9876543210" in parsed.cells
    assert "standalone" in parsed.cells
    assert "RUNNING" in parsed.cells
    titles = {attrs.get("title") for _, attrs in parsed.tags}
    assert TASK_ARN in titles
    assert ARN in titles
    assert any(c.startswith("PolicyViolationError") for c in parsed.captions)


def test_a_refused_outcome_and_a_batch_show_the_refusal() -> None:
    outcome = InstanceOutcome(container_instance=ARN, status="refused", error=refusal())
    for markup in (outcome._repr_html_(), BatchResult(outcomes=[outcome])._repr_html_()):
        parsed = Parsed(markup)
        assert "protect-standalone-tasks" in parsed.cells
        assert "fedcba9876543210fedcba9876543210" in parsed.cells
        assert "Refused: 0123456789abcdef0123456789abcdef" in parsed.captions


def test_ids_and_arns_stay_on_one_line_in_a_scrolling_container() -> None:
    instance = refusal().container_instance
    assert instance is not None
    for markup in (instance._repr_html_(), instances_table([instance, instance])):
        parsed = Parsed(markup)
        (first, attrs), *_ = parsed.tags
        assert first == "div"
        assert "overflow-x:auto" in (attrs["style"] or "")
        id_cells = [a for t, a in parsed.tags if t == "td" and a.get("title") == ARN]
        assert id_cells
        assert all("white-space:nowrap" in (a["style"] or "") for a in id_cells)


def test_a_list_of_instances_is_one_row_each_escaped() -> None:
    evil = ContainerInstance.model_validate({"containerInstanceArn": ARN, "status": EVIL})
    other = ContainerInstance.model_validate({"ec2InstanceId": "i-1"})
    markup = instances_table([evil, other])
    parsed = Parsed(markup)
    assert markup.count("<tr>") == 3  # a header and one row per instance
    assert EVIL in parsed.cells
    assert "<script>" not in markup
    assert "2 container instance(s)" in parsed.captions
    assert "0123456789abcdef0123456789abcdef" in parsed.cells
    assert "i-1" in parsed.cells
