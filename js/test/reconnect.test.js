// Stateful reconnect on every transport: resume, replay without gaps or duplicates, acks, restarts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALL, setup, start } from "../testing/helpers.js";
import { peek } from "../testing/private.js";

const kinds = (events) => events.filter(([kind]) => kind !== "attempt").map(([kind, value]) => [kind, value?.message ?? value]);

async function connected(options = {}) {
  const ctx = setup(options);
  assert.equal(await start(ctx.hub, ctx.clock), null);
  const got = [];
  ctx.hub.on("echo", (x) => got.push(x));
  return { ...ctx, got, conn: ctx.server.last };
}

// How each fake stream's drop reaches the client.
const DROP = {
  WebSockets: "1006",
  ServerSentEvents: "EventSource error",
  ForeverFrame: "end of stream",
  LongPolling: "poll failed: network error",
};

for (const transport of ALL) {
  test(`${transport}: a drop resumes the same connection; both replays fill the gap exactly once`, async () => {
    const { hub, clock, server, events, got, conn } = await connected({ transports: [transport] });
    conn.invoke("echo", 1);
    conn.invoke("echo", 2);
    conn.invoke("echo", 3);
    hub.send("Echo", "a");
    await clock.advance(10);
    assert.deepEqual(got, [1, 2, 3]);
    server.lossy = true; // "b" is lost in flight with the stream
    hub.send("Echo", "b");
    await clock.advance(10);
    server.drop();
    conn.invoke("echo", 4); // written while the client has no stream
    conn.invoke("echo", 5);
    server.lossy = false;
    const records = conn.records.length;
    await clock.advance(10);

    assert.equal(hub.state, "Connected");
    assert.equal(hub.transport, transport);
    assert.equal(hub.connectionId, "cid1");
    assert.deepEqual(got, [1, 2, 3, 4, 5], "the server replayed 1-5; the client dropped 1-3");
    assert.deepEqual(conn.records.slice(records, records + 3), [
      '{"type":9,"sequenceId":1}',
      '{"type":1,"target":"Echo","arguments":["a"]}',
      '{"type":1,"target":"Echo","arguments":["b"]}',
    ]);
    assert.deepEqual(conn.received.map((m) => m.arguments[0]), ["a", "b"], "the server dropped the duplicate a");
    assert.deepEqual(kinds(events), [
      ["reconnecting", DROP[transport]],
      ["reconnected", "cid1"],
    ]);
    assert.deepEqual(
      hub.attempts.map((a) => [a.transport, a.outcome, a.resume]),
      [[transport, "connected", true]]
    );
    conn.invoke("echo", 6);
    await clock.advance(10);
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
  });
}

test("the client acks what it received about a second later, once per burst", async () => {
  const { clock, conn } = await connected({ transports: ["WebSockets"] });
  conn.invoke("echo", 1);
  conn.invoke("echo", 2);
  await clock.advance(500);
  conn.invoke("echo", 3);
  await clock.advance(499);
  assert.ok(!conn.records.some((r) => r.startsWith('{"type":8')));
  await clock.advance(1);
  assert.deepEqual(conn.records.filter((r) => r.startsWith('{"type":8')), ['{"type":8,"sequenceId":3}']);
  assert.deepEqual(conn.unacked, [], "the client's ack emptied the server's buffer");
});

test("the server's Ack empties the client's replay buffer", async () => {
  const { hub, clock, conn } = await connected({ transports: ["LongPolling"] });
  hub.send("Echo", 1);
  hub.send("Echo", 2);
  await clock.advance(10);
  assert.equal(peek(hub.buffer, "unacked").length, 2);
  conn.ack();
  await clock.advance(10);
  assert.equal(peek(hub.buffer, "unacked").length, 0);
});

test("a pending invocation survives a resume and completes", async () => {
  const { hub, clock, server } = await connected({ transports: ["ServerSentEvents"] });
  server.lossy = true;
  const result = hub.invoke("Echo", "late");
  await clock.advance(10);
  server.drop();
  server.lossy = false;
  await clock.advance(10);
  assert.equal(await result, "late");
});

test("a resume that fails on its transport moves on to the next one", async () => {
  const { hub, clock, server, got, conn } = await connected();
  assert.equal(hub.transport, "WebSockets");
  server.mode.WebSockets = "refuse";
  server.drop();
  conn.invoke("echo", "missed");
  await clock.advance(10);
  assert.equal(hub.transport, "ServerSentEvents");
  assert.deepEqual(got, ["missed"]);
  assert.deepEqual(
    hub.attempts.map((a) => [a.transport, a.outcome, a.reason, a.resume]),
    [
      ["WebSockets", "failed", "closed before Sequence: 1006", true],
      ["ServerSentEvents", "connected", "", true],
    ]
  );
  assert.ok(server.log.includes("POST https://app.test/hubs/echo?id=tok1"), "the token was probed");
});

test("long polling resumes with resume=1 on its first poll only", async () => {
  const { clock, server } = await connected({ transports: ["LongPolling"] });
  server.drop();
  await clock.advance(10);
  const polls = server.log.filter((line) => line.startsWith("GET "));
  const resumed = polls.findIndex((line) => line.endsWith("&resume=1"));
  assert.ok(resumed > 0);
  assert.ok(polls.slice(resumed + 1).length > 0);
  assert.ok(polls.slice(resumed + 1).every((line) => line === "GET https://app.test/hubs/echo?id=tok1"));
});

test("a resume answered 404 starts a fresh connection (app-level reconnect)", async () => {
  const { hub, clock, server, events } = await connected({ transports: ["LongPolling"] });
  server.lossy = true;
  const lost = hub.invoke("Echo", "x").catch((e) => e);
  await clock.advance(10);
  server.lossy = false;
  server.forget();
  await clock.advance(10);
  assert.equal(hub.state, "Connected");
  assert.equal(hub.connectionId, "cid2");
  assert.match((await lost).message, /started afresh/);
  assert.deepEqual(kinds(events).map(([kind]) => kind), ["reconnecting", "reconnected"]);
  assert.equal(events.at(-1)[1], "cid2");
  assert.deepEqual(
    hub.attempts.map((a) => [a.transport, a.outcome, a.reason, a.resume]),
    [
      ["LongPolling", "failed", "closed before Sequence: HTTP 404", true],
      ["LongPolling", "connected", "", false],
    ]
  );
  assert.equal(await Promise.all([hub.invoke("Echo", "y"), clock.advance(10)]).then(([r]) => r), "y");
});

test("a gone token behind a WebSocket is found by the probe", async () => {
  const { hub, clock, server } = await connected({ transports: ["WebSockets"] });
  server.forget();
  await clock.advance(10);
  assert.equal(hub.connectionId, "cid2");
  assert.equal(hub.transport, "WebSockets");
});

test("without stateful reconnect a drop restarts the connection", async () => {
  const { hub, clock, server, events } = await connected({ server: { stateful: false }, transports: ["WebSockets"] });
  assert.equal(peek(peek(hub, "connection"), "stateful"), false);
  server.drop();
  await clock.advance(10);
  assert.equal(hub.connectionId, "cid2");
  assert.deepEqual(kinds(events).map(([kind]) => kind), ["reconnecting", "reconnected"]);
  assert.ok(server.log.includes("DELETE https://app.test/hubs/echo?id=tok1"));
  assert.equal(peek(hub.buffer, "enabled"), false);
});

test("reconnect backs off 0, 2, 10, 30 s, then closes with the last error", async () => {
  const { hub, clock, server, events } = await connected({ transports: ["WebSockets"] });
  server.mode.WebSockets = "refuse";
  server.drop();
  const dropped = clock.time;
  const at = (ms) => clock.advance(dropped + ms - clock.time);
  const rounds = () => server.log.filter((line) => line.startsWith("WS ")).length - 1;
  await at(1);
  assert.equal(rounds(), 1);
  await at(1999);
  assert.equal(rounds(), 1);
  await at(2000);
  assert.equal(rounds(), 2);
  await at(11999);
  assert.equal(rounds(), 2);
  await at(12000);
  assert.equal(rounds(), 3);
  await at(41999);
  assert.equal(hub.state, "Reconnecting");
  await at(42000);
  assert.equal(rounds(), 4);
  assert.equal(hub.state, "Disconnected");
  const [kind, message] = kinds(events).at(-1);
  assert.equal(kind, "close");
  assert.equal(message, "Unable to resume: WebSockets failed (closed before Sequence: 1006)");
});

test("an empty reconnectDelays list closes on the first drop", async () => {
  const { hub, clock, server, events } = await connected({ reconnectDelays: [] });
  server.drop();
  await clock.advance(10);
  assert.equal(hub.state, "Disconnected");
  assert.deepEqual(kinds(events), [["close", "1006"]]);
});

test("stop while reconnecting ends it: no more attempts, onclose without error", async () => {
  const { hub, clock, server, events } = await connected({ transports: ["WebSockets"] });
  server.mode.WebSockets = "refuse";
  server.drop();
  await clock.advance(10);
  await hub.stop();
  const before = server.log.length;
  await clock.advance(60000);
  assert.equal(hub.state, "Disconnected");
  assert.equal(server.log.length, before);
  assert.deepEqual(kinds(events).at(-1), ["close", undefined]);
});

test("sending while reconnecting is refused", async () => {
  const { hub, clock, server } = await connected({ transports: ["WebSockets"] });
  server.mode.WebSockets = "refuse";
  server.drop();
  await clock.advance(10);
  await assert.rejects(hub.send("Echo", 1), /not in the 'Connected' State/);
  await assert.rejects(hub.invoke("Echo", 1), /not in the 'Connected' State/);
});

test("the client pings after 15 s without sending", async () => {
  const { hub, clock, conn } = await connected({ transports: ["ServerSentEvents"], serverTimeout: 1e9 });
  const pings = () => conn.records.filter((r) => r === '{"type":6}').length;
  await clock.advance(10000);
  hub.send("Echo", 1);
  await clock.advance(14000);
  assert.equal(pings(), 0);
  await clock.advance(1000);
  assert.equal(pings(), 1);
  await clock.advance(15000);
  assert.equal(pings(), 2);
});

test("30 s with nothing from the server counts as a drop", async () => {
  const { hub, clock, conn, events } = await connected({ transports: ["WebSockets"] });
  await clock.advance(20000);
  conn.write({ type: 6 });
  await clock.advance(29990);
  assert.equal(hub.state, "Connected");
  await clock.advance(10);
  assert.deepEqual(kinds(events)[0], ["reconnecting", "server timeout: nothing received for 30000 ms"]);
  await clock.advance(10);
  assert.equal(hub.state, "Connected");
});

test("a Close message with an error closes; with allowReconnect it reconnects", async () => {
  const first = await connected({ transports: ["WebSockets"] });
  first.conn.write({ type: 7, error: "shutting down" });
  await first.clock.advance(10);
  assert.equal(first.hub.state, "Disconnected");
  assert.deepEqual(kinds(first.events), [["close", "Server closed the connection: shutting down"]]);

  const second = await connected({ transports: ["WebSockets"] });
  second.conn.write({ type: 7, allowReconnect: true });
  second.server.forget();
  await second.clock.advance(10);
  assert.equal(second.hub.state, "Connected");
  assert.equal(second.hub.connectionId, "cid2");
});

test("a Sequence that skips messages is a protocol error", async () => {
  const { hub, clock, conn, events } = await connected({ transports: ["WebSockets"] });
  conn.write({ type: 9, sequenceId: 5 });
  await clock.advance(10);
  assert.equal(hub.state, "Disconnected");
  assert.deepEqual(kinds(events), [["close", "Sequence 5 skips messages: last received was 0"]]);
});
