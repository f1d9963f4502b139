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


def test_profile_summary_compares_two_labels_layer_by_layer(tmp_path: Path) -> None:
    import gzip

    from benchmarks import profile

    base = "main (benchmarks/server.py:1);BaseEventLoop._run_once (asyncio/base_events.py:1922)"
    write = f"{base};_Duplex.write (gateway/transports/websockets.py:108);WSProtocol.send (uvicorn/x.py:456)"
    stacks = {"before": [(write, 3), (f"{base};EpollSelector.select (selectors.py:468)", 1)],
              "after": [(write, 1), (f"{base};EpollSelector.select (selectors.py:468)", 1)]}
    for label, lines in stacks.items():
        for kind in profile.KINDS:
            with gzip.open(tmp_path / f"{label}_{kind}.folded.gz", "wt") as out:
                out.write("".join(f"{stack} {n}\n" for stack, n in lines))

    text = profile.summary(tmp_path, "before", "after")

    assert text.count("#### ") == len(profile.KINDS)
    assert "| uvicorn | 75% | 50% |" in text and "| asyncio | 25% | 50% |" in text
    assert "| 1 | `gateway/transports/websockets.py _Duplex.write` | 75% | " in text
