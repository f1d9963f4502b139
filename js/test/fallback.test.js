// Negotiate, transport order, start confirmed by the handshake, and the attempt trace.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALL, setup, start } from "../testing/helpers.js";

const trace = (hub) => hub.attempts.map((a) => `${a.transport}:${a.outcome}`);

test("by default the server's order is used and the first transport wins", async () => {
  const { hub, clock, server } = setup({ server: { transports: ["LongPolling", "WebSockets"] } });
  assert.equal(await start(hub, clock), null);
  assert.equal(hub.transport, "LongPolling");
  assert.equal(hub.state, "Connected");
  assert.equal(hub.connectionId, "cid1");
  assert.deepEqual(trace(hub), ["LongPolling:connected"]);
  assert.equal(server.log[0], "POST https://app.test/hubs/echo/negotiate?negotiateVersion=1&useStatefulReconnect=true&foreverFrame=true");
});

test("the transports option restricts and reorders", async () => {
  const { hub, clock, server } = setup({ transports: ["LongPolling", "ServerSentEvents"] });
  server.mode.LongPolling = "refuse";
  assert.equal(await start(hub, clock), null);
  assert.deepEqual(trace(hub), ["LongPolling:failed", "ServerSentEvents:connected"]);
  assert.ok(!server.log.some((line) => line.startsWith("WS ")));
});

test("a refused transport falls back at once, with a DELETE and a fresh negotiate", async () => {
  const { hub, clock, server } = setup();
  server.mode.WebSockets = "refuse";
  assert.equal(await start(hub, clock), null);
  assert.equal(hub.transport, "ServerSentEvents");
  assert.equal(hub.connectionId, "cid2");
  assert.deepEqual(server.log.slice(0, 5), [
    "POST https://app.test/hubs/echo/negotiate?negotiateVersion=1&useStatefulReconnect=true&foreverFrame=true",
    "WS wss://app.test/hubs/echo?id=tok1",
    "DELETE https://app.test/hubs/echo?id=tok1",
    "POST https://app.test/hubs/echo/negotiate?negotiateVersion=1&useStatefulReconnect=true&foreverFrame=true",
    "SSE https://app.test/hubs/echo?id=tok2",
  ]);
  assert.equal(hub.attempts[0].reason, "closed before handshake: 1006");
});

test("a WebSocket that opens but never answers the handshake times out, then the next transport runs", async () => {
  const { hub, clock, server } = setup({ startTimeout: 3000 });
  server.mode.WebSockets = "silent";
  const started = hub.start();
  await clock.advance(2999);
  assert.equal(hub.state, "Connecting");
  assert.equal(hub.attempts.length, 0);
  await clock.advance(1);
  await started;
  assert.equal(hub.transport, "ServerSentEvents");
  assert.deepEqual(hub.attempts[0], {
    transport: "WebSockets",
    outcome: "failed",
    reason: "no handshake within 3000 ms",
    ms: 3000,
    resume: false,
  });
});

test("a buffering proxy in front of SSE (open, but no data) causes fallback, not a hung start", async () => {
  const { hub, clock, server } = setup({ transports: ["ServerSentEvents", "LongPolling"] });
  server.mode.ServerSentEvents = "silent";
  assert.equal(await start(hub, clock, 6000), null);
  assert.equal(hub.transport, "LongPolling");
  assert.deepEqual(trace(hub), ["ServerSentEvents:failed", "LongPolling:connected"]);
  assert.equal(hub.attempts[0].reason, "no handshake within 5000 ms; per-host limit? try {shared: true}", "over HTTP, the per-host limit is a suspect");
  assert.ok(server.log.includes("DELETE https://app.test/hubs/echo?id=tok1"));
});

test("a failed iframe load is caught by the start timeout", async () => {
  const { hub, clock, server } = setup({ transports: ["ForeverFrame", "LongPolling"] });
  server.mode.ForeverFrame = "refuse";
  assert.equal(await start(hub, clock, 6000), null);
  assert.equal(hub.transport, "LongPolling");
  assert.equal(hub.attempts[0].reason, "no handshake within 5000 ms; per-host limit? try {shared: true}");
  assert.equal(hub.env.document.body.children.length, 0);
});

test("when every transport fails the error names each attempt and why", async () => {
  const { hub, clock, server, events } = setup();
  server.mode.WebSockets = "refuse";
  server.mode.ServerSentEvents = "silent";
  server.mode.ForeverFrame = "refuse";
  server.mode.LongPolling = "refuse";
  const error = await start(hub, clock, 20000);
  assert.equal(
    error.message,
    "Unable to connect: WebSockets failed (closed before handshake: 1006); " +
      "ServerSentEvents failed (no handshake within 5000 ms; per-host limit? try {shared: true}); " +
      "ForeverFrame failed (no handshake within 5000 ms; per-host limit? try {shared: true}); " +
      "LongPolling failed (closed before handshake: poll failed: network error)"
  );
  assert.deepEqual(error.attempts.map((a) => a.transport), ALL);
  assert.equal(events.filter(([kind]) => kind === "attempt").length, 4);
  assert.equal(events.filter(([kind]) => kind === "close").length, 0);
  assert.equal(hub.state, "Disconnected");
  assert.equal(server.connections.size, 0, "every token was DELETEd");
});

test("unsupported, unknown and unoffered transports are skipped and reported", async () => {
  const { hub, clock } = setup({
    server: { transports: ["Carrier", "WebSockets", "ServerSentEvents", "LongPolling"] },
    env: { WebSocket: undefined },
    transports: ["ForeverFrame", "Carrier", "WebSockets", "LongPolling"],
  });
  assert.equal(await start(hub, clock), null);
  assert.deepEqual(
    hub.attempts.map((a) => [a.transport, a.outcome, a.reason]),
    [
      ["ForeverFrame", "skipped", "not offered by the server"],
      ["Carrier", "skipped", "unknown to this client"],
      ["WebSockets", "skipped", "not supported here"],
      ["LongPolling", "connected", ""],
    ]
  );
});

test("nothing usable: the error says so for each transport, and the token is released", async () => {
  const { hub, clock, server } = setup({
    env: { WebSocket: undefined, EventSource: undefined, document: undefined },
    transports: ["WebSockets", "ServerSentEvents", "ForeverFrame"],
  });
  const error = await start(hub, clock);
  assert.equal(
    error.message,
    "Unable to connect: WebSockets skipped (not supported here); ServerSentEvents skipped (not supported here); " +
      "ForeverFrame skipped (not supported here)"
  );
  assert.equal(server.connections.size, 0);
});

test("a handshake error is a hard failure: no further transport is tried", async () => {
  const { hub, clock, server } = setup();
  server.handshakeReply = { error: "protocol 'json' not supported" };
  const error = await start(hub, clock);
  assert.equal(error.message, "Unable to connect: WebSockets failed (handshake rejected: protocol 'json' not supported)");
  assert.equal(hub.attempts.length, 1);
});

test("a failed negotiate rejects start with its status", async () => {
  const { hub, clock, server } = setup();
  server.negotiateStatus = 503;
  const error = await start(hub, clock);
  assert.equal(error.message, "Unable to connect: negotiate failed (HTTP 503)");
  assert.equal(hub.state, "Disconnected");
});

test("negotiate version 0 uses the connectionId as the token", async () => {
  const { hub, clock, server } = setup({ server: { version: 0 }, transports: ["LongPolling"] });
  assert.equal(await start(hub, clock), null);
  assert.ok(server.log.includes("GET https://app.test/hubs/echo?id=cid1"));
  assert.equal(await Promise.all([hub.invoke("Echo", 5), clock.advance(10)]).then(([r]) => r), 5);
});

test("the attempt event fires for every attempt as it ends", async () => {
  const { hub, clock, server, events } = setup();
  server.mode.WebSockets = "refuse";
  await start(hub, clock);
  assert.deepEqual(
    events.map(([kind, a]) => [kind, a.transport, a.outcome, a.resume]),
    [
      ["attempt", "WebSockets", "failed", false],
      ["attempt", "ServerSentEvents", "connected", false],
    ]
  );
});

test("stop during start abandons it", async () => {
  const { hub, clock, server } = setup();
  server.mode.WebSockets = "silent";
  const started = start(hub, clock, 100);
  await clock.advance(0);
  await hub.stop();
  const error = await started;
  assert.match(error.message, /stopped/);
  assert.equal(hub.state, "Disconnected");
  await clock.advance(10000);
  assert.equal(hub.state, "Disconnected");
  assert.ok(!server.log.some((line) => line.startsWith("SSE ")));
  assert.ok(server.log.includes("DELETE https://app.test/hubs/echo?id=tok1"));
});

test("start twice is refused", async () => {
  const { hub, clock } = setup();
  await start(hub, clock);
  await assert.rejects(hub.start(), /not in the 'Disconnected' state/);
});

test("a relative URL resolves against the page", async () => {
  const ctx = setup();
  const { HubConnection } = await import("../src/index.js");
  const hub = new HubConnection("/hubs/echo", { env: ctx.hub.env });
  assert.equal(await start(hub, ctx.clock), null);
  assert.equal(ctx.server.log[0], "POST https://app.test/hubs/echo/negotiate?negotiateVersion=1&useStatefulReconnect=true&foreverFrame=true");
});

test("a negotiate that fails at the network level names CORS as a cause across origins", async () => {
  const { hub, clock } = setup({ env: { fetch: () => Promise.reject(new TypeError("Failed to fetch")) } });
  assert.equal((await start(hub, clock)).message, "Unable to connect: negotiate failed (network error)");
  const cross = setup({
    env: { fetch: () => Promise.reject(new TypeError("Failed to fetch")), location: { href: "https://other.test/", origin: "https://other.test" } },
  });
  assert.equal(
    (await start(cross.hub, cross.clock)).message,
    "Unable to connect: negotiate failed (network error, or this page's origin is not allowed (CORS))"
  );
});
