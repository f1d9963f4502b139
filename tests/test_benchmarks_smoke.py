"""The benchmark suite runs end to end on a tiny plan (a few seconds); it measures nothing here."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("socketio")
pytest.importorskip("psutil")
pytest.importorskip("matplotlib")

from benchmarks import report  # noqa: E402
from benchmarks.run import PLANS, Runner  # noqa: E402


def test_smoke_plan_runs_and_reports(tmp_path: Path) -> None:
    plan = dataclasses.replace(PLANS["smoke"], targets=("gateway-ws", "raw-ws"), only=("A", "B", "C"))
    results = asyncio.run(Runner(plan, tmp_path, progress=lambda text: None).run())
    data = dataclasses.asdict(results)

    assert results.skipped == []
    assert {r["target"] for r in results.rtt} == {"gateway-ws", "raw-ws"}
    assert all(r["count"] == plan.rtt_count for r in results.rtt)
    assert all(r["alive"] == r["n"] for r in results.idle)
    assert all(r["delivered"] == r["expected"] == 10 * plan.fanout_count for r in results.fanout)
    text = report.write(data, tmp_path).read_text()
    assert "gateway WebSockets" in text
    assert (tmp_path / "rtt_cdf.png").stat().st_size > 0


def test_messagepack_targets_run_beside_json(tmp_path: Path) -> None:
    targets = ("gateway-ws", "gateway-ws-mp", "gateway-lp-mp")
    plan = dataclasses.replace(PLANS["smoke"], targets=targets, only=("A", "C"))
    results = asyncio.run(Runner(plan, tmp_path, progress=lambda text: None).run())

    assert results.skipped == []
    assert [r["target"] for r in results.rtt] == list(targets)
    assert all(r["count"] == plan.rtt_count for r in results.rtt)
    assert [r["target"] for r in results.fanout] == list(targets)
    assert all(r["delivered"] == r["expected"] and r["out_of_order"] == 0 for r in results.fanout)
    text = report.write(dataclasses.asdict(results), tmp_path).read_text()
    assert "gateway WebSockets MessagePack" in text and "gateway LongPolling MessagePack" in text
