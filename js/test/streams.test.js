// Streams both ways, client results and the MessagePack protocol end to end against the fake gateway,
// with both hub protocols where the transport carries them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, start, ALL } from "../testing/helpers.js";
import { Subject } from "../src/index.js";
import { MessagePackHubProtocol } from "../src/msgpack.js";

const PROTOCOLS = { json: () => ({}), messagepack: () => ({ protocol: new MessagePackHubProtocol() }) };
// The pairs negotiate allows: MessagePack needs Binary, which SSE and ForeverFrame do not carry.
const PAIRS = Object.keys(PROTOCOLS).flatMap((p) => ALL.filter((t) => p === "json" || t === "WebSockets" || t === "LongPolling").map((t) => [p, t]));

async function connected(protocol, transport, options = {}) {
  const ctx = setup({ transports: [transport], ...PROTOCOLS[protocol](), ...options });
  assert.equal(await start(ctx.hub, ctx.clock), null);
  assert.equal(ctx.hub.transport, transport);
  return { ...ctx, conn: ctx.server.last };
}

/** Subscribes to `stream` and records what it delivers. */
function watch(stream) {
  const seen = { items: [], completed: false, error: null };
  const subscription = stream.subscribe({
    next: (item) => seen.items.push(item),
    complete: () => (seen.completed = true),
    error: (error) => (seen.error = error),
  });
  return { seen, subscription };
}

for (const [protocol, transport] of PAIRS) {
  const name = `${protocol} over ${transport}`;

  test(`${name}: a server stream delivers its items, then completes`, async () => {
    const { hub, clock, conn } = await connected(protocol, transport);
    const { seen } = watch(hub.stream("Counter", 5));
    await clock.advance(10);
    assert.deepEqual(seen, { items: [0, 1, 2, 3, 4], completed: true, error: null });
    assert.deepEqual(conn.received[0], { type: 4, invocationId: "1", target: "Counter", arguments: [5] });
  });

  test(`${name}: a client stream (Subject) goes out as StreamItems and a Completion`, async () => {
    const { hub, clock, conn } = await connected(protocol, transport);
    const subject = new Subject();
    const sum = hub.invoke("Sum", subject);
    for (const n of [1, 2, 3]) subject.next(n);
    subject.complete();
    await clock.advance(10);
    assert.equal(await sum, 6);
    assert.deepEqual(conn.received, [
      { type: 1, invocationId: "2", target: "Sum", arguments: [], streamIds: ["1"] },
      { type: 2, invocationId: "1", item: 1 },
      { type: 2, invocationId: "1", item: 2 },
      { type: 2, invocationId: "1", item: 3 },
      { type: 3, invocationId: "1" },
    ]);
  });

  test(`${name}: a handler answers a client-result invocation`, async () => {
    const { hub, clock, conn } = await connected(protocol, transport);
    hub.on("Ask", (x) => Promise.resolve({ doubled: x * 2 }));
    conn.write({ type: 1, invocationId: "s1", target: "Ask", arguments: [21] });
    await clock.advance(10);
    assert.deepEqual(conn.received, [{ type: 3, invocationId: "s1", result: { doubled: 42 } }]);
  });

  test(`${name}: stream items cut off by a drop arrive once after the resume`, async () => {
    const { hub, clock, server, conn } = await connected(protocol, transport);
    const { seen } = watch(hub.stream("Live"));
    await clock.advance(10);
    const write = (item) => conn.write({ type: 2, invocationId: "1", item });
    write(0);
    write(1);
    await clock.advance(10);
    server.drop();
    write(2); // written while the client has no stream: only the replay brings them
    write(3);
    await clock.advance(10);
    assert.equal(hub.state, "Connected", "resumed");
    write(4);
    conn.write({ type: 3, invocationId: "1" });
    await clock.advance(10);
    assert.deepEqual(seen, { items: [0, 1, 2, 3, 4], completed: true, error: null });
  });
}

test("a server stream's error goes to error(); nothing more is delivered", async () => {
  const { hub, clock, conn } = await connected("json", "WebSockets");
  const { seen } = watch(hub.stream("Live"));
  conn.write({ type: 2, invocationId: "1", item: "a" });
  conn.write({ type: 3, invocationId: "1", error: "it broke" });
  conn.write({ type: 2, invocationId: "1", item: "late" });
  await clock.advance(10);
  assert.deepEqual(seen.items, ["a"]);
  assert.equal(seen.error.message, "it broke");
  assert.equal(seen.completed, false);
});

test("disposing of the last subscription sends CancelInvocation once, and delivery stops", async () => {
  const { hub, clock, conn } = await connected("json", "WebSockets");
  const stream = hub.stream("Live", 1);
  const first = watch(stream);
  const second = watch(stream);
  conn.write({ type: 2, invocationId: "1", item: 1 });
  await clock.advance(10);
  first.subscription.dispose();
  await clock.advance(10);
  assert.ok(!conn.received.some((m) => m.type === 5), "one observer is left");
  second.subscription.dispose();
  second.subscription.dispose();
  conn.write({ type: 2, invocationId: "1", item: 2 });
  await clock.advance(10);
  assert.deepEqual(conn.received.filter((m) => m.type === 5), [{ type: 5, invocationId: "1" }]);
  assert.deepEqual([first.seen.items, second.seen.items], [[1], [1]]);
});

test("an observer that throws is reported apart and the connection carries on", async () => {
  const { hub, clock, conn } = await connected("json", "WebSockets");
  hub.stream("Live").subscribe({
    next: () => {
      throw new Error("observer bug");
    },
  });
  conn.write({ type: 2, invocationId: "1", item: 1 });
  await clock.advance(10);
  assert.deepEqual(clock.errors.map((e) => e.message), ["observer bug"]);
  assert.equal(hub.state, "Connected");
});

test("a Subject's error ends the client stream with an error Completion", async () => {
  const { hub, clock, conn } = await connected("messagepack", "WebSockets");
  const subject = new Subject();
  const sum = hub.invoke("Sum", 10, subject).catch((e) => e);
  subject.next(1);
  subject.error(new Error("source failed"));
  subject.next(2);
  await clock.advance(10);
  assert.equal((await sum).message, "stream failed: source failed");
  assert.deepEqual(conn.received.slice(0, 3), [
    { type: 1, invocationId: "2", target: "Sum", arguments: [10], streamIds: ["1"] },
    { type: 2, invocationId: "1", item: 1 },
    { type: 3, invocationId: "1", error: "source failed" },
  ]);
  assert.equal(conn.received.length, 3, "the Subject's observer is gone after its end");
});

test("stream and send refuse while disconnected", async () => {
  const { hub } = setup({ transports: ["WebSockets"] });
  assert.throws(() => hub.stream("Counter", 1), /not in the 'Connected' State/);
  await assert.rejects(hub.send("Echo", new Subject()), /not in the 'Connected' State/);
});

test("client results: a value, a promise, a throw, a rejection and no handler", async () => {
  const { hub, clock, conn } = await connected("messagepack", "LongPolling");
  hub.on("value", (x) => x + 1);
  hub.on("later", (x) => new Promise((resolve) => setTimeout(() => resolve(x * 10), 1)));
  hub.on("throws", () => {
    throw new Error("no");
  });
  hub.on("rejects", async () => Promise.reject(new Error("not now")));
  hub.on("void", () => undefined);
  const ask = (invocationId, target) => conn.write({ type: 1, invocationId, target, arguments: [4] });
  ["value", "later", "throws", "rejects", "void", "nobody"].forEach((target, i) => ask(`c${i}`, target));
  await new Promise((resolve) => setTimeout(resolve, 5));
  await clock.advance(10);
  const byId = Object.fromEntries(conn.received.map((m) => [m.invocationId, m]));
  assert.deepEqual(byId, {
    c0: { type: 3, invocationId: "c0", result: 5 },
    c1: { type: 3, invocationId: "c1", result: 40 },
    c2: { type: 3, invocationId: "c2", error: "no" },
    c3: { type: 3, invocationId: "c3", error: "not now" },
    c4: { type: 3, invocationId: "c4" },
    c5: { type: 3, invocationId: "c5", error: "Client didn't provide a result." },
  });
});

test("a client result computed while resuming is sent with the replay", async () => {
  const { hub, clock, server, conn } = await connected("json", "WebSockets");
  let answer;
  hub.on("slow", () => new Promise((resolve) => (answer = resolve)));
  conn.write({ type: 1, invocationId: "s1", target: "slow", arguments: [] });
  await clock.advance(10);
  server.mode.WebSockets = "refuse";
  server.drop();
  await clock.advance(10);
  assert.equal(hub.state, "Reconnecting");
  answer("done");
  server.mode.WebSockets = "ok";
  await clock.advance(2000);
  assert.equal(hub.state, "Connected");
  assert.deepEqual(conn.received, [{ type: 3, invocationId: "s1", result: "done" }]);
});

test("a Binary protocol skips the transports negotiate lists without Binary", async () => {
  const { hub, clock, server } = setup({ protocol: new MessagePackHubProtocol() });
  assert.equal(await start(hub, clock), null);
  assert.equal(hub.transport, "WebSockets");
  await hub.stop();
  server.mode.WebSockets = "refuse";
  const attempts = [];
  hub.onattempt((a) => attempts.push(`${a.transport} ${a.outcome} ${a.reason}`.trim()));
  assert.equal(await start(hub, clock), null);
  assert.deepEqual(attempts, [
    "WebSockets failed closed before handshake: 1006",
    "ServerSentEvents skipped no Binary transfer format",
    "ForeverFrame skipped no Binary transfer format",
    "LongPolling connected",
  ]);
  assert.ok(server.last.records[0].includes('"protocol":"messagepack"'));
});

test("MessagePack carries binary arguments and dates; frames fed byte by byte still parse", async () => {
  const { hub, clock, server } = await connected("messagepack", "WebSockets");
  server.chunking = "bytes";
  const value = { blob: Uint8Array.of(0, 1, 254, 255), when: new Date(1700000000123), n: -(2 ** 40), s: "ünïcode" };
  const echoed = hub.invoke("Echo", value);
  await clock.advance(10);
  assert.deepEqual(await echoed, value);
});
