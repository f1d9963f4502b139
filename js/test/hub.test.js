// HubConnection: handlers, invoke and send, client results, states.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, start } from "../testing/helpers.js";
import { peek } from "../testing/private.js";
import { HubConnectionState } from "../src/index.js";

async function connected(options = { transports: ["WebSockets"] }) {
  const ctx = setup(options);
  assert.equal(await start(ctx.hub, ctx.clock), null);
  return { ...ctx, conn: ctx.server.last };
}

test("states follow the connection's life", async () => {
  const { hub, clock, server } = setup({ transports: ["WebSockets"] });
  const seen = [hub.state];
  const started = hub.start();
  seen.push(hub.state);
  await clock.advance(10);
  await started;
  seen.push(hub.state);
  server.mode.WebSockets = "refuse";
  server.drop();
  await clock.advance(10);
  seen.push(hub.state);
  const stopped = hub.stop();
  seen.push(hub.state);
  await stopped;
  seen.push(hub.state);
  assert.deepEqual(seen, ["Disconnected", "Connecting", "Connected", "Reconnecting", "Disconnected", "Disconnected"]);
  assert.deepEqual(Object.keys(HubConnectionState), ["Disconnected", "Connecting", "Connected", "Reconnecting", "Disconnecting"]);
  assert.equal(hub.connectionId, null);
  assert.equal(hub.transport, null);
});

test("on is case-insensitive, off removes one handler or all", async () => {
  const { hub, clock, conn } = await connected();
  const a = [];
  const b = [];
  const fa = (x) => a.push(x);
  const fb = (x) => b.push(x);
  hub.on("Echo", fa);
  hub.on("echo", fb);
  conn.invoke("ECHO", 1);
  await clock.advance(10);
  hub.off("echo", fa);
  conn.invoke("echo", 2);
  await clock.advance(10);
  hub.off("echo");
  conn.invoke("echo", 3);
  await clock.advance(10);
  assert.deepEqual([a, b], [[1], [1, 2]]);
});

test("handlers get every argument; a throwing handler is reported apart and stops nothing", async () => {
  const { hub, clock, conn } = await connected();
  const got = [];
  hub.on("many", () => {
    throw new Error("handler bug");
  });
  hub.on("many", (...args) => got.push(args));
  conn.invoke("many", 1, "two", { three: 3 });
  await clock.advance(10);
  assert.deepEqual(got, [[1, "two", { three: 3 }]]);
  assert.deepEqual(clock.errors.map((e) => e.message), ["handler bug"]);
  assert.equal(hub.state, "Connected");
});

test("an exception in an event callback is reported apart, not thrown into the connection", async () => {
  const { hub, clock, server } = await connected();
  hub.onreconnecting(() => {
    throw new Error("listener bug");
  });
  server.drop();
  await clock.advance(10);
  assert.deepEqual(clock.errors.map((e) => e.message), ["listener bug"]);
  assert.equal(hub.state, "Connected");
});

test("invoke resolves with the result or rejects with the server's error", async () => {
  const { hub, clock } = await connected();
  const ok = hub.invoke("Echo", { x: [1, 2] });
  const bad = hub.invoke("Fail", 1).catch((e) => e);
  await clock.advance(10);
  assert.deepEqual(await ok, { x: [1, 2] });
  assert.equal((await bad).message, "boom");
  assert.equal(peek(hub, "_pending").size, 0);
});

test("send writes an invocation without an id; invoke numbers them", async () => {
  const { hub, clock, conn } = await connected();
  await hub.send("Echo", "s");
  hub.invoke("Echo", "i");
  hub.invoke("Echo", "j");
  await clock.advance(10);
  assert.deepEqual(conn.records.slice(1), [
    '{"type":1,"target":"Echo","arguments":["s"]}',
    '{"type":1,"invocationId":"1","target":"Echo","arguments":["i"]}',
    '{"type":1,"invocationId":"2","target":"Echo","arguments":["j"]}',
  ]);
});

test("EchoPush: the server calls back the client", async () => {
  const { hub, clock } = await connected();
  const got = [];
  hub.on("echo", (x) => got.push(x));
  const done = hub.invoke("EchoPush", "ping");
  await clock.advance(10);
  await done;
  assert.deepEqual(got, ["ping"]);
});

test("a server invocation with an id gets the first handler's result as a Completion", async () => {
  const { hub, clock, conn } = await connected();
  const others = [];
  hub.on("ask", async (x) => x * 2);
  hub.on("ask", (x) => others.push(x) && "ignored");
  hub.on("broken", () => {
    throw new Error("nope");
  });
  conn.write({ type: 1, invocationId: "s1", target: "ask", arguments: [21] });
  conn.write({ type: 1, invocationId: "s2", target: "broken", arguments: [] });
  conn.write({ type: 1, invocationId: "s3", target: "missing", arguments: [] });
  await clock.advance(10);
  const completions = conn.received.filter((m) => m.type === 3).sort((x, y) => (x.invocationId < y.invocationId ? -1 : 1));
  assert.deepEqual(completions, [
    { type: 3, invocationId: "s1", result: 42 },
    { type: 3, invocationId: "s2", error: "nope" },
    { type: 3, invocationId: "s3", error: "Client didn't provide a result." },
  ]);
  assert.deepEqual(others, [21], "every handler runs; the first one answers");
});

test("stop rejects pending invocations, DELETEs the token and fires onclose once", async () => {
  const { hub, clock, server, events } = await connected();
  server.lossy = true;
  const pending = hub.invoke("Echo", 1).catch((e) => e);
  await hub.stop();
  await hub.stop();
  assert.match((await pending).message, /connection being closed/);
  assert.ok(server.log.includes("DELETE https://app.test/hubs/echo?id=tok1"));
  assert.deepEqual(events.filter(([kind]) => kind === "close"), [["close", undefined]]);
  await clock.advance(60000);
  assert.equal(hub.state, "Disconnected");
});

test("the hub can start again after stop", async () => {
  const { hub, clock } = await connected();
  await hub.stop();
  assert.equal(await start(hub, clock), null);
  assert.equal(hub.connectionId, "cid2");
  assert.deepEqual(await Promise.all([hub.invoke("Echo", 7), clock.advance(10)]).then(([r]) => r), 7);
});

test("defaults: the browser globals, wrapped", async () => {
  const { HubConnection } = await import("../src/index.js");
  const hub = new HubConnection("https://gw.test/hub", {});
  assert.equal(typeof hub.env.setTimeout, "function");
  assert.equal(hub.env.document, undefined);
  assert.deepEqual(peek(hub, "options").reconnectDelays, [0, 2000, 10000, 30000]);
  assert.equal(peek(hub, "options").startTimeout, 5000);
  assert.equal(peek(hub, "options").keepAliveInterval, 15000);
  assert.equal(peek(hub, "options").serverTimeout, 30000);
  assert.equal(peek(hub, "options").withCredentials, false);
});
