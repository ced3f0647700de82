"""Run pip-audit on the CI venv and decide: fail on a known vulnerability, warn when it cannot tell.

Usage: ``python .ci/audit_deps.py PIP_AUDIT_COMMAND...`` (e.g. ``.ci-venv/bin/pip-audit
--skip-editable``); ``--format json`` is added. Exit status:

- 1: pip-audit reported a vulnerability, or failed in a way that is not about the network;
- 0: no vulnerability among the dependencies it could audit. A warning on stderr says so when
  the vulnerability service could not be reached, or answered for none (or only some) of them:
  a dependency that was not audited is never reported as safe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# What pip-audit's traceback holds when the service (PyPI's JSON API, OSV) is out of reach.
_NETWORK_MARKERS = (
    "requests.exceptions.",
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Timeout",
    "ServiceError",
)
_TIMEOUT_S = 600


def _warn(message: str) -> None:
    print(f"WARNING: dependency audit: {message}", file=sys.stderr)


def main(command: list[str]) -> int:
    """Run ``command --format json`` and return the exit status CI should use."""
    try:
        process = subprocess.run(  # noqa: S603 - the command line CI gives, no shell
            [*command, "--format", "json", "--progress-spinner", "off"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _warn(f"pip-audit did not finish in {_TIMEOUT_S} s; dependencies NOT audited")
        return 0
    try:
        report: dict[str, Any] = json.loads(process.stdout)
    except ValueError:
        if any(marker in process.stderr for marker in _NETWORK_MARKERS):
            last = process.stderr.strip().splitlines()[-1:] or ["?"]
            _warn(f"the vulnerability service is unreachable ({last[0][:300]}); NOT audited")
            return 0
        print(process.stderr, file=sys.stderr)
        print(f"pip-audit failed (exit {process.returncode}) without a report", file=sys.stderr)
        return 1
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(skipped)
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(
                f"VULNERABLE: {dependency['name']} {dependency.get('version')}: {vuln.get('id')} "
                f"(fixed in {fixed})",
                file=sys.stderr,
            )
    if vulnerable:
        return 1
    if dependencies and not audited:
        example = skipped[0]["skip_reason"]
        _warn(
            f"the vulnerability service answered for none of the {len(skipped)} dependencies "
            f"(e.g. {example!r}); NOT audited"
        )
    elif skipped:
        names = ", ".join(d["name"] for d in skipped)
        _warn(f"{len(skipped)} dependencies could not be audited: {names}")
    if audited:
        print(f"dependency audit: {audited} dependencies, no known vulnerability")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
