// The page's lifecycle: wake-up events resume at once, keep-alives ride on network events when timers are
// throttled, and a start held back by the browser's per-host connection limit says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, start } from "../testing/helpers.js";
import { flush } from "../testing/fakes.js";
import { HubConnection } from "../src/index.js";

const HINT = "; per-host limit? try {shared: true}";
const kinds = (events) => events.filter(([kind]) => kind !== "attempt").map(([kind, value]) => [kind, value?.message ?? value]);

async function connected(options) {
  const ctx = setup(options);
  assert.equal(await start(ctx.hub, ctx.clock), null);
  return ctx;
}

for (const [type, event] of [
  ["online", { type: "online" }],
  ["resume", { type: "resume" }],
  ["pageshow", { type: "pageshow", persisted: true }],
]) {
  test(`"${type}" resumes the same connection at once, whatever the transport says`, async () => {
    const { hub, clock, server, events } = await connected({ transports: ["LongPolling"] });
    server.last.invoke("echo", 1);
    await clock.advance(10);
    hub.env.window.dispatch(type, event);
    await clock.advance(10);
    assert.equal(hub.state, "Connected");
    assert.deepEqual(kinds(events), [
      ["reconnecting", type],
      ["reconnected", "cid1"],
    ]);
    assert.deepEqual(hub.attempts.map((a) => [a.transport, a.outcome, a.resume]), [["LongPolling", "connected", true]]);
    assert.equal(server.count, 1, "no new negotiate: the server still held the connection");
  });
}

test("a wake-up event does nothing to a connection without stateful reconnect", async () => {
  const { hub, clock, events } = await connected({ server: { stateful: false }, transports: ["LongPolling"] });
  hub.env.window.dispatch("online", { type: "online" });
  await clock.advance(10);
  assert.deepEqual(kinds(events), []);
});

test('"online" ends the wait before the next reconnect round', async () => {
  const { hub, clock, server } = await connected({ transports: ["WebSockets"], reconnectDelays: [0, 60000] });
  server.mode.WebSockets = "refuse";
  server.drop();
  await clock.advance(10);
  assert.equal(hub.state, "Reconnecting", "the first round failed; the next waits 60 s");
  server.mode.WebSockets = "ok";
  hub.env.window.dispatch("online", { type: "online" });
  await clock.advance(10);
  assert.equal(hub.state, "Connected");
  assert.equal(hub.connectionId, "cid1");
});

test("with timers held back (a background tab), the keep-alive goes out when the server's data arrives", async () => {
  const { hub, clock, server } = await connected({ transports: ["WebSockets"] });
  const records = server.last.records.length;
  clock.time += 16000; // no timer ran: throttled
  server.last.invoke("echo", 1);
  await flush();
  assert.deepEqual(server.last.records.slice(records), ['{"type":6}']);
  assert.equal(hub.state, "Connected");
});

test("a negotiate the browser holds back times out, and the attempt record names the per-host limit", async () => {
  const { hub, server } = setup({ transports: ["ServerSentEvents"], startTimeout: 20 });
  server.negotiateStatus = "held";
  const awake = setTimeout(() => {}, 1000); // AbortSignal.timeout's timer does not keep node running
  const error = await hub.start().catch((e) => e);
  clearTimeout(awake);
  assert.equal(error.message, `Unable to connect: negotiate failed (no answer within 20 ms${HINT})`);
  assert.deepEqual(hub.attempts, [{ transport: "negotiate", outcome: "failed", reason: `no answer within 20 ms${HINT}`, ms: 0, resume: false }]);
  assert.equal(hub.state, "Disconnected");
});

test("{shared: true} without the shared-mode entry fails clearly", () => {
  assert.throws(() => new HubConnection("https://app.test/hubs/echo", { shared: true }), /load client\.shared\.js/);
});
