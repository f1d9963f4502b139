"""The sans-IO job record and a publisher's outbox: no event loop, no store, time as an argument."""

from __future__ import annotations

import pytest

from gateway.progress import JobRecord, JobState, Outbox, RecordLimits, TransitionError
from gateway.progress.record import (
    ELLIPSIS,
    Reply,
    Verdict,
    cancelled,
    completed,
    created,
    failed,
    judge,
    started,
    stepped,
)


def test_a_job_goes_through_its_states_with_seq_1_2_3() -> None:
    record, events = JobRecord("j"), []
    for change in (lambda r: created(r, "Queued", 1.0, total=4), lambda r: started(r, "go", 2.0),
                   lambda r: stepped(r, 3.0, message="one"), lambda r: stepped(r, 4.0, 75, "three", step=3),
                   lambda r: completed(r, 5.0, {"rows": 3})):
        record, event = change(record)
        events.append(event)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["state"] for e in events] == ["Pending", "Processing", "Processing", "Processing", "Completed"]
    assert [e["percent"] for e in events] == [0, 0, 25, 75, 100]
    assert [e["step"] for e in events] == [0, 0, 1, 3, 4]
    assert events[-1]["result"] == {"rows": 3} and events[-1]["error"] is None and events[-1]["ts"] == 5.0
    assert "result" not in events[2] and "error" not in events[2]  # final states only
    assert set(events[0]) == {"jobId", "state", "percent", "step", "total", "message", "seq", "ts"}


@pytest.mark.parametrize("end", [
    lambda r: completed(r, 1.0), lambda r: failed(r, 1.0, "boom"), lambda r: cancelled(r, 1.0),
])
def test_a_final_record_takes_no_change(end: object) -> None:
    record, _ = end(JobRecord("j"))  # type: ignore[operator]
    assert record.final
    with pytest.raises(TransitionError, match="no change can follow"):
        stepped(record, 2.0)


def test_a_failure_carries_its_error_and_keeps_the_message() -> None:
    record, _ = stepped(JobRecord("j"), 1.0, 40, "charging")
    _, event = failed(record, 2.0, ValueError("card declined"))
    assert (event["state"], event["error"], event["message"], event["percent"]) == (
        "Failed", "card declined", "charging", 40)


def test_a_huge_message_is_cut_to_max_message_and_says_so() -> None:
    limits = RecordLimits(max_message=10)
    _, event = stepped(JobRecord("j", limits=limits), 1.0, 5, "x" * 5000)
    assert event["message"] == "x" * 9 + ELLIPSIS and event["truncated"] is True
    _, short = stepped(JobRecord("j", limits=limits), 1.0, 5, "fits")
    assert "truncated" not in short and short["message"] == "fits"
    _, error = failed(JobRecord("j", limits=limits), 1.0, "e" * 50)
    assert len(error["error"]) == 10 and error["truncated"] is True


def test_a_result_over_max_result_is_dropped_and_one_json_cannot_carry_is_its_repr() -> None:
    limits = RecordLimits(max_result=100)
    _, big = completed(JobRecord("j", limits=limits), 1.0, ["y" * 200])
    assert big["result"] is None and big["truncated"] is True
    _, odd = completed(JobRecord("j", limits=limits), 1.0, {1, 2})
    assert odd["result"] == "{1, 2}"


def test_the_log_keeps_the_last_max_log_events_and_the_snapshot_says_it_was_cut() -> None:
    record = JobRecord("j", limits=RecordLimits(max_log=3))
    publisher = record
    for i in range(5):
        publisher, event = stepped(publisher, float(i), message=f"s{i}")
        record = record.with_logged(event)
    snap = record.snapshot()
    assert [e["seq"] for e in snap["log"]] == [3, 4, 5] and snap["logTruncated"] is True
    assert snap["seq"] == 5 and snap["message"] == "s4"
    assert JobRecord("k").with_logged(stepped(JobRecord("k"), 1.0)[1]).snapshot()["logTruncated"] is False


@pytest.mark.parametrize(("stored", "final", "writer", "seq", "verdict"), [
    (3, False, 0, 4, Verdict.ok),
    (3, False, 0, 3, Verdict.stale),
    (3, False, 0, 6, Verdict.stale),
    (3, True, 0, 4, Verdict.final),
    (3, True, 3, 3, Verdict.duplicate),
    (3, False, 3, 2, Verdict.duplicate),
])
def test_the_store_rule(stored: int, final: bool, writer: int, seq: int, verdict: Verdict) -> None:
    assert judge(stored, final, writer, seq) is verdict


def _steps(outbox: Outbox, count: int, now: float = 0.0) -> None:
    for _ in range(count):
        outbox.add(lambda r: stepped(r, now, message="s"))


def test_a_stale_reply_renumbers_what_waits_after_the_stored_seq() -> None:
    outbox = Outbox("j")
    _steps(outbox, 3)
    assert [e["seq"] for e in outbox.batch()] == [1, 2, 3]
    outbox.settle(Reply((Verdict.stale,), seq=1, cancel=False))  # the application's Pending is seq 1
    assert [e["seq"] for e in outbox.batch()] == [2, 3, 4]
    outbox.settle(Reply((Verdict.ok, Verdict.ok, Verdict.ok), seq=4, cancel=True))
    assert not outbox.pending and outbox.cancel_requested
    _steps(outbox, 1)
    assert outbox.batch()[0]["seq"] == 5


def test_duplicates_are_acknowledged_and_a_final_record_ends_the_job() -> None:
    outbox = Outbox("j")
    _steps(outbox, 3)
    outbox.settle(Reply((Verdict.duplicate, Verdict.final), seq=9, cancel=False))
    assert not outbox.pending and outbox.over and outbox.cancel_requested
    assert outbox.add(lambda r: stepped(r, 0.0)) is False


def test_a_full_outbox_drops_the_oldest_steps_never_a_state_change() -> None:
    outbox = Outbox("j", max_pending=6)
    outbox.add(lambda r: started(r, "go", 0.0))
    _steps(outbox, 8)
    outbox.add(lambda r: completed(r, 0.0))
    states = [e["state"] for e in outbox.pending]
    assert len(outbox.pending) == 6 and outbox.dropped == 4
    assert states[0] == "Processing" and outbox.pending[0]["step"] == 0 and states[-1] == "Completed"
    assert [e["step"] for e in outbox.pending] == [0, 1, 2, 7, 8, 8]  # the first batch stays, then the newest


def test_a_failed_store_is_tried_again_later_each_time() -> None:
    outbox = Outbox("j")
    _steps(outbox, 1)
    assert outbox.due(0.0)
    outbox.failed(0.0)
    assert not outbox.due(100.0) and outbox.due(250.0)
    outbox.failed(250.0)
    assert not outbox.due(700.0) and outbox.due(750.0)
    outbox.settle(Reply((Verdict.ok,), seq=1, cancel=False))
    assert outbox.failures == 0 and not outbox.due(0.0)


def test_states_are_the_contract_names() -> None:
    assert [s.value for s in JobState] == ["Pending", "Processing", "Completed", "Failed", "Cancelled"]
