"""The benchmarks still run: ``python -m benchmarks --quick``, in a subprocess.

A smoke test, not a timed one: the quick sizes are too small and CI machines too noisy for
the ratios to mean anything, so only the report's structure is checked, and the one number
that is deterministic: ECS requests per instance of a fleet run (counted by LocalEcs).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {
    "startup",
    "percall",
    "fleet_60",
    "ratelimits",
    "memory",
    "targets",
    "drain_single_poll5",
    "drain_single_poll5_events",
    "drain_single_poll10",
    "drain_fleet_12_c10",
    "drain_fleet_12_c12",
    "drain_buckets_105",
    "plans",
    "service_checks_4x2",
    "replace_4_w2_surge",
    "worker_12",
    "local_ops",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["name"]: result for result in report["results"]}


def test_every_benchmark_reports(report: dict[str, Any]) -> None:
    assert report["quick"] is True
    assert set(by_name(report)) == EXPECTED


def test_reports_have_sane_structure(report: dict[str, Any]) -> None:
    for result in report["results"]:
        assert result["title"]
        assert result["metrics"], result["name"]
        for check in result["checks"]:
            assert set(check) == {"what", "value", "target", "unit", "met"}
            assert isinstance(check["met"], bool)
            assert math.isfinite(check["value"])
        for key, value in result["metrics"].items():
            if "ratio" in key or key.endswith(("_median_s", "_median_ms", "_peak_mib")):
                assert isinstance(value, int | float), key
                assert math.isfinite(value), (result["name"], key, value)
                if key.startswith("overhead"):
                    # A difference of two timings (ours - baseline): its sign depends on how
                    # noisy the machine is, so only its being a number is checked.
                    continue
                # A duration, a ratio of durations or a memory peak: positive on any machine.
                assert value > 0, (result["name"], key, value)


def test_fleet_requests_per_instance(report: dict[str, Any]) -> None:
    # Request counts are deterministic: the describes are batched 100 per call.
    fleet = by_name(report)["fleet_60"]["metrics"]
    assert fleet["ecs_safe_requests_per_instance"] <= 1.02
    assert fleet["ecs_safe_failed_instances"] == 0
    assert fleet["baseline_failed_instances"] == 0


def test_rate_limited_run_completes(report: dict[str, Any]) -> None:
    metrics = by_name(report)["ratelimits"]["metrics"]
    assert metrics["ecs_safe_failed_max"] == 0
    assert metrics["floor_s"] > 0


def test_import_pulls_no_heavy_module(report: dict[str, Any]) -> None:
    assert by_name(report)["startup"]["metrics"]["heavy_modules_after_import"] == "none"


def test_service_checks_read_once_per_wave(report: dict[str, Any]) -> None:
    # The plan's counts are deterministic: the room and budget checks read per wave.
    metrics = by_name(report)["service_checks_4x2"]["metrics"]
    assert metrics["plan_added_reads_per_instance"] <= 1.0
    assert metrics["plan_with_DescribeServices"] >= 1
    # The rolling drain with the checks reads the services (budgets, the gate) and more.
    assert metrics["roll_with_DescribeServices"] > metrics.get("roll_without_DescribeServices", 0)
    assert metrics["roll_added_reads_per_instance"] > 0
