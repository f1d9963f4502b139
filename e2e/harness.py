"""The harness page, and a Python handle on it.

The page lives only in the tests: at the gateway's own origin it is served by `page.route` (so no test page ships
in the product), at another origin by a `StaticOrigin`. It loads the client from the gateway
(`{gateway}/hubs/jobs/client.js`, global `Gateway`) and puts `window.E2E` on the page: start a connection, record
every attempt, reconnect event and `progress` message, start a job and subscribe to it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Request, WebSocket

HARNESS_PATH = "/__harness"
TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
PROGRESS_FIELDS = ("jobId", "state", "percent", "step", "message", "seq")
FINAL_STATES = ("Completed", "Failed")

HARNESS_JS = r"""
(() => {
  "use strict";
  const GW = window.__GATEWAY__;
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  const text = (e) => (e === undefined || e === null) ? "" : String((e && e.message) || e);
  const E2E = window.E2E = {
    base: GW,
    conn: null,
    clientError: null,
    attempts: [],      // every onattempt record, in order
    progress: [],      // every `progress` invocation received, in order, with its arrival time
    echoes: [],        // every `echo` invocation received
    events: [],        // reconnecting / reconnected / close
    snapshots: {},     // jobId -> what Subscribe returned
    startError: null,
    startMs: null,

    async start(opts) {
      opts = opts || {};
      if (!window.Gateway) {
        throw new Error("the client did not load: " + (E2E.clientError || "window.Gateway is missing"));
      }
      const options = Object.assign({}, opts.options || {});
      if (opts.transports) options.transports = opts.transports;
      if (opts.startTimeout) options.startTimeout = opts.startTimeout;
      const c = new Gateway.HubConnection(GW + (opts.hub || "/hubs/jobs"), options);
      E2E.conn = c;
      c.on("progress", (m) => { E2E.progress.push(Object.assign({}, m, {_t: now()})); });
      c.on("echo", (m) => { E2E.echoes.push(m); });
      c.onattempt((r) => { E2E.attempts.push(Object.assign({}, r, {_t: now()})); });
      c.onreconnecting((e) => { E2E.events.push({type: "reconnecting", t: now(), error: text(e)}); });
      c.onreconnected(() => { E2E.events.push({type: "reconnected", t: now(), transport: c.transport}); });
      if (typeof c.onclose === "function") {
        c.onclose((e) => { E2E.events.push({type: "close", t: now(), error: text(e)}); });
      }
      const started = performance.now();
      try {
        await c.start();
      } catch (e) {
        E2E.startError = text(e);
        throw e;
      }
      E2E.startMs = Math.round(performance.now() - started);
      return {transport: c.transport, state: String(c.state), ms: E2E.startMs};
    },

    async startJob(steps, stepMs) {
      const r = await fetch(GW + "/jobs", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({steps: steps, step_ms: stepMs}),
      });
      const body = await r.text();
      if (r.status !== 202) throw new Error("POST /jobs answered " + r.status + ": " + body);
      return JSON.parse(body).id;
    },

    async subscribe(jobId) {
      const s = await E2E.conn.invoke("Subscribe", jobId);
      E2E.snapshots[jobId] = (s === undefined) ? null : s;
      return E2E.snapshots[jobId];
    },

    progressOf(jobId) { return E2E.progress.filter((m) => m.jobId === jobId); },

    finished(jobId) {
      const s = E2E.snapshots[jobId];
      if (s && ["Completed", "Failed"].includes(s.state)) return true;
      return E2E.progressOf(jobId).some((m) => ["Completed", "Failed"].includes(m.state));
    },

    state() {
      const c = E2E.conn;
      return {
        transport: c ? c.transport : null,
        state: c ? String(c.state) : null,
        attempts: E2E.attempts,
        connAttempts: c && Array.isArray(c.attempts) ? c.attempts.map((r) => Object.assign({}, r)) : null,
        events: E2E.events,
        startError: E2E.startError,
        startMs: E2E.startMs,
      };
    },

    async stop() { if (E2E.conn) await E2E.conn.stop(); },
  };
})();
"""


def harness_html(gateway: str, load_client: bool = True) -> str:
    """The harness document for a page whose connections go to `gateway` (an origin, no trailing slash)."""
    gateway = gateway.rstrip("/")
    script = (
        f'<script src="{gateway}/hubs/jobs/client.js" '
        "onerror=\"E2E.clientError = 'GET ' + this.src + ' failed'\"></script>"
        if load_client
        else ""
    )
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gateway e2e harness</title>\n"
        f"<script>window.__GATEWAY__ = {json.dumps(gateway)};</script>\n"
        f"<script>{HARNESS_JS}</script>\n{script}\n"
        "</head><body><p>gateway e2e harness</p></body></html>"
    )


@dataclass
class WireLog:
    """What the page put on the wire towards a hub, classified by transport (independent of any client)."""

    requests: list[Request] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> WireLog:
        page.on("request", lambda r: self.requests.append(r))
        page.on("websocket", lambda ws: self._on_websocket(ws))
        return self

    def _on_websocket(self, ws: WebSocket) -> None:
        self.websockets.append(ws.url)

    def negotiates(self, hub: str = "/hubs/jobs") -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and urlsplit(r.url).path == f"{hub}/negotiate"]

    def streams(self, hub: str = "/hubs/jobs") -> dict[str, int]:
        """GETs (and upgrades) on the hub endpoint with a connection token, counted by transport."""
        counts = {name: 0 for name in TRANSPORTS}
        counts["WebSockets"] = sum(1 for url in self.websockets if urlsplit(url).path == hub)
        for r in self.requests:
            parts = urlsplit(r.url)
            if r.method != "GET" or parts.path != hub or "id=" not in parts.query:
                continue
            if "transport=ForeverFrame" in parts.query:
                counts["ForeverFrame"] += 1
            elif "text/event-stream" in (r.headers.get("accept") or ""):
                counts["ServerSentEvents"] += 1
            else:
                counts["LongPolling"] += 1
        return counts


class Harness:
    """A Python handle on `window.E2E` in one page."""

    def __init__(self, page: Page, gateway: str) -> None:
        self.page = page
        self.gateway = gateway.rstrip("/")
        self.wire = WireLog().attach(page)

    # -- opening the page

    @classmethod
    def at_gateway(cls, page: Page, gateway: str, load_client: bool = True) -> Harness:
        """Open the harness at the gateway's own origin; the document is served by page.route, not the server."""
        gateway = gateway.rstrip("/")
        html = harness_html(gateway, load_client)
        page.route(
            re.compile(re.escape(gateway + HARNESS_PATH) + r"(\?.*)?$"),
            lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html),
        )
        harness = cls(page, gateway)
        page.goto(gateway + HARNESS_PATH)
        harness.wait_loaded(load_client)
        return harness

    @classmethod
    def at_url(cls, page: Page, url: str, gateway: str) -> Harness:
        """Open a harness page served elsewhere (another origin) whose connections go to `gateway`."""
        harness = cls(page, gateway)
        page.goto(url)
        harness.wait_loaded(True)
        return harness

    def wait_loaded(self, load_client: bool) -> None:
        if not load_client:
            self.page.wait_for_function("() => window.E2E")
            return
        self.page.wait_for_function("() => window.E2E && (window.Gateway || E2E.clientError)", timeout=15_000)
        error = self.page.evaluate("() => E2E.clientError")
        assert not error, f"the JS client did not load from the gateway: {error}"

    # -- driving it

    def start(
        self,
        transports: Sequence[str] | None = None,
        start_timeout: int | None = None,
        hub: str = "/hubs/jobs",
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        opts: dict[str, Any] = {"hub": hub, "options": options or {}}
        if transports is not None:
            opts["transports"] = list(transports)
        if start_timeout is not None:
            opts["startTimeout"] = start_timeout
        result: dict[str, Any] = self.page.evaluate("(opts) => E2E.start(opts)", opts)
        return result

    def start_error(self, **kwargs: Any) -> str:
        """Start, expecting it to fail; returns the error message the page saw."""
        try:
            result = self.start(**kwargs)
        except Exception:  # noqa: BLE001 - Playwright wraps the page's rejection in its own Error
            return str(self.page.evaluate("() => E2E.startError"))
        raise AssertionError(f"start() succeeded where it should have failed: {result}")

    def start_job(self, steps: int, step_ms: int) -> str:
        return str(self.page.evaluate("([s, m]) => E2E.startJob(s, m)", [steps, step_ms]))

    def subscribe(self, job_id: str) -> Any:
        return self.page.evaluate("(id) => E2E.subscribe(id)", job_id)

    def run_job(self, steps: int, step_ms: int) -> str:
        job_id = self.start_job(steps, step_ms)
        self.subscribe(job_id)
        return job_id

    def wait_finished(self, job_id: str, timeout: float = 30.0) -> None:
        try:
            self.page.wait_for_function("(id) => E2E.finished(id)", arg=job_id, timeout=timeout * 1000)
        except Exception as exc:
            raise AssertionError(
                f"job {job_id} did not finish within {timeout:.0f} s on the page; "
                f"received seqs {[m.get('seq') for m in self.progress(job_id)]}; state {self.state()}"
            ) from exc

    def wait_progress(self, job_id: str, count: int, timeout: float = 15.0) -> None:
        self.page.wait_for_function(
            "([id, n]) => E2E.progressOf(id).length >= n", arg=[job_id, count], timeout=timeout * 1000
        )

    # -- reading it

    def progress(self, job_id: str) -> list[dict[str, Any]]:
        return list(self.page.evaluate("(id) => E2E.progressOf(id)", job_id))

    def snapshot(self, job_id: str) -> Any:
        return self.page.evaluate("(id) => E2E.snapshots[id]", job_id)

    def state(self) -> dict[str, Any]:
        return dict(self.page.evaluate("() => E2E.state()"))

    def attempts(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("() => E2E.attempts"))

    def trace(self) -> list[tuple[str, str]]:
        return [(a["transport"], a["outcome"]) for a in self.attempts()]

    def events(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("() => E2E.events"))

    def transport(self) -> str:
        return str(self.page.evaluate("() => E2E.conn && E2E.conn.transport"))

    def stop(self) -> None:
        self.page.evaluate("() => E2E.stop()")

    def job_sequence(self, job_id: str) -> list[dict[str, Any]]:
        """The job's progress as this page saw it, checked and normalized (see `checked_sequence`)."""
        return checked_sequence(job_id, self.snapshot(job_id), self.progress(job_id))


# --------------------------------------------------------------------------------------------- checks


def normalize(job_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """The fields of a progress message that must be equal between two runs of the same job parameters."""
    missing = [f for f in PROGRESS_FIELDS if f not in message]
    assert not missing, f"progress message lacks {missing}: {message}"
    assert message["jobId"] == job_id, f"progress for another job ({message['jobId']} != {job_id}): {message}"
    out = {f: message[f] for f in PROGRESS_FIELDS}
    out["jobId"] = "<job>"
    if isinstance(out["message"], str):
        out["message"] = out["message"].replace(job_id, "<job>")
    return out


def checked_sequence(job_id: str, snapshot: Any, pushed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check that `pushed` continues `snapshot` with no gap and no duplicate, and return both, normalized.

    A page subscribes after the job was created, so what Subscribe answers (the current state) is already past
    seq 0. When that answer carries the job's `log` (every progress so far, as the demo's does), the log is the
    prefix and the whole must be seq 1, 2, ... N; otherwise the answer itself is. Every `progress` received after
    it must be the next seq, +1 each, to the final state.
    """
    prefix: list[dict[str, Any]] = []
    if isinstance(snapshot, dict):
        log = snapshot.get("log")
        if isinstance(log, list) and log:
            prefix = [m for m in log if isinstance(m, dict)]
        elif isinstance(snapshot.get("seq"), int) and snapshot["seq"] > 0:
            prefix = [snapshot]
    prefix_seqs = [m.get("seq") for m in prefix]
    if prefix and isinstance(snapshot, dict) and "log" in snapshot:
        assert prefix_seqs == list(range(1, len(prefix) + 1)), f"Subscribe's log is not seq 1..n: {prefix_seqs}"
    base_seq = prefix_seqs[-1] if prefix else 0
    # A step published between the page joining the job's group and Subscribe reading the record arrives both
    # ways; the client applies only what is past the snapshot (the progress contract), and so does this check.
    pushed = [m for m in pushed if not isinstance(m.get("seq"), int) or m["seq"] > base_seq]
    seqs = [m.get("seq") for m in pushed]
    expected = list(range(base_seq + 1, base_seq + 1 + len(pushed)))
    assert seqs == expected, (
        f"progress seqs have a gap, a duplicate or a reordering: got {seqs}, expected {expected} "
        f"(Subscribe answered up to seq {base_seq})"
    )
    merged = prefix + pushed
    assert merged, f"no progress at all for job {job_id}"
    assert merged[-1].get("state") in FINAL_STATES, f"job {job_id} did not end: last message {merged[-1]}"
    return [normalize(job_id, m) for m in merged]


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
