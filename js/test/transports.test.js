// Each transport: framing fed whole, one character at a time and with trailing data; its own rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALL, setup, start } from "../testing/helpers.js";
import { flush, FakeClock, FakeWindow } from "../testing/fakes.js";
import { member, peek } from "../testing/private.js";
import { ForeverFrame, LongPolling, ServerSentEvents, WebSockets, TRANSPORTS } from "../src/index.js";
import { Poster } from "../src/transports/poster.js";

const PAYLOADS = ["plain", "</script><!-- x", "\u2028\u2029 é 😀", "rs \x1e inside", { nested: [1, 2] }];

async function connected(transport, options = {}) {
  const ctx = setup({ transports: [transport], ...options });
  const error = await start(ctx.hub, ctx.clock);
  assert.equal(error, null);
  assert.equal(ctx.hub.transport, transport);
  const got = [];
  ctx.hub.on("echo", (x) => got.push(x));
  return { ...ctx, got };
}

for (const transport of ALL) {
  for (const chunking of ["whole", "bytes"]) {
    test(`${transport}: records arrive intact when the stream is fed ${chunking}`, async () => {
      const { server, clock, got } = await connected(transport);
      server.chunking = chunking;
      for (const p of PAYLOADS) server.last.invoke("echo", p);
      await clock.advance(10);
      assert.deepEqual(got, PAYLOADS);
    });
  }

  test(`${transport}: a record cut by the end of a chunk completes with the next one`, async () => {
    const { server, clock, got } = await connected(transport);
    const first = JSON.stringify({ type: 1, target: "echo", arguments: ["a"] }) + "\x1e";
    const second = JSON.stringify({ type: 1, target: "echo", arguments: ["b"] }) + "\x1e";
    server.last.stream.write(first + second.slice(0, 9));
    await clock.advance(10);
    assert.deepEqual(got, ["a"]);
    server.last.stream.write(second.slice(9));
    await clock.advance(10);
    assert.deepEqual(got, ["a", "b"]);
  });

  test(`${transport}: client records reach the server in order`, async () => {
    const { server, clock, hub } = await connected(transport);
    const results = Promise.all([hub.invoke("Echo", 1), hub.invoke("Echo", 2), hub.send("Echo", 3)]);
    await clock.advance(10);
    assert.deepEqual((await results).slice(0, 2), [1, 2]);
    assert.deepEqual(server.last.received.map((m) => m.arguments[0]), [1, 2, 3]);
    assert.equal(server.last.records[0], '{"protocol":"json","version":1}');
  });
}

test("the transport list is the priority order", () => {
  assert.deepEqual(TRANSPORTS.map((T) => T.transportName), ALL);
  assert.deepEqual(TRANSPORTS.map((T) => peek(T, "resumeQuery")), ["", "", "", "&resume=1"]);
});

test("WebSockets connects to ws(s):// with the token", async () => {
  const { server } = await connected("WebSockets");
  assert.ok(server.log.includes("WS wss://app.test/hubs/echo?id=tok1"));
});

test("ServerSentEvents closes its EventSource itself on error, and passes withCredentials", async () => {
  const { server, clock, hub } = await connected("ServerSentEvents", { withCredentials: true, reconnectDelays: [] });
  const source = peek(peek(hub, "connection").transport, "_source");
  assert.deepEqual(source.init, { withCredentials: true });
  server.drop();
  await clock.advance(10);
  assert.equal(source.closed, true);
  assert.equal(hub.state, "Disconnected");
});

test("ForeverFrame builds a hidden frame on the token, origin and frame id, and removes it on stop", async () => {
  const { clock, hub } = await connected("ForeverFrame");
  const env = hub.env;
  const [frame] = env.document.body.children;
  const src = new URL(frame.src);
  assert.equal(frame.hidden, true);
  assert.equal(src.origin + src.pathname, "https://app.test/hubs/echo");
  assert.equal(src.searchParams.get("id"), "tok1");
  assert.equal(src.searchParams.get("transport"), "ForeverFrame");
  assert.equal(src.searchParams.get("origin"), "https://app.test");
  assert.match(src.searchParams.get("frame"), /^[A-Za-z0-9_-]{1,64}$/);
  await hub.stop();
  await clock.advance(10);
  assert.equal(env.document.body.children.length, 0);
  assert.equal(env.window.listeners.filter(([type]) => type === "message").length, 0);
});

test("ForeverFrame accepts only its frame's window, the gateway's origin and its frame id", async () => {
  const { clock, hub, got } = await connected("ForeverFrame");
  const { window, document } = hub.env;
  const frame = document.body.children[0];
  const gw = new URL(frame.src).searchParams.get("frame");
  const record = (x) => JSON.stringify({ type: 1, target: "echo", arguments: [x] }) + "\x1e";
  const good = { source: frame.contentWindow, origin: "https://app.test", data: { gw, d: record("ok") } };
  window.dispatch("message", { ...good, source: {}, data: { gw, d: record("other window") } });
  window.dispatch("message", { ...good, origin: "https://evil.test", data: { gw, d: record("other origin") } });
  window.dispatch("message", { ...good, data: { gw: "f0", d: record("other frame") } });
  window.dispatch("message", { ...good, data: "not an object" });
  window.dispatch("message", good);
  await clock.advance(10);
  assert.deepEqual(got, ["ok"]);
});

test("ForeverFrame treats d === null as the end of the stream", async () => {
  const { server, clock, hub, events } = await connected("ForeverFrame", { reconnectDelays: [] });
  server.drop(); // the fake frame's drop posts d: null
  await clock.advance(10);
  assert.equal(hub.state, "Disconnected");
  assert.match(events.find(([kind]) => kind === "close")[1].message, /end of stream/);
});

test("ForeverFrame waits for the page's load event before adding its frame", async () => {
  const window = new FakeWindow();
  const appended = [];
  const document = {
    readyState: "loading",
    createElement: () => ({ contentWindow: {}, remove() {} }),
    body: { appendChild: (f) => appended.push(f) },
  };
  const env = { window, document, location: { origin: "https://app.test" }, fetch: async () => ({}) };
  const t = new ForeverFrame(env, {});
  const connected = t.connect("https://gw.test/hub?id=T");
  await flush();
  assert.equal(appended.length, 0);
  window.dispatch("load", {});
  await connected;
  assert.equal(appended.length, 1);
  assert.ok(appended[0].src.startsWith("https://gw.test/hub?id=T&transport=ForeverFrame&origin=https%3A%2F%2Fapp.test&frame="));
  t.stop();
});

test("LongPolling: 204 closes, another status drops with it, and fetch never caches", async () => {
  const calls = [];
  const answers = [
    { status: 200, body: "" },
    { status: 200, body: '{"type":6}\x1e' },
    { status: 204, body: "" },
  ];
  const env = {
    fetch: async (url, init) => {
      calls.push([url, init]);
      const { status, body } = answers.shift();
      return { status, ok: status < 300, text: async () => body };
    },
  };
  const t = new LongPolling(env, {});
  const received = [];
  const closed = new Promise((resolve) => (t.onclose = resolve));
  t[member("onreceive")] = (data) => received.push(data);
  await t.connect("https://gw.test/hub?id=T&resume=1");
  const error = await closed;
  assert.equal(error.message, "HTTP 204");
  assert.deepEqual(received, ["", '{"type":6}\x1e']);
  assert.deepEqual(calls.map(([url]) => url), ["https://gw.test/hub?id=T&resume=1", "https://gw.test/hub?id=T", "https://gw.test/hub?id=T"]);
  assert.ok(calls.every(([, init]) => init.cache === "no-store" && init.method === "GET" && init.credentials === "same-origin"));

  const t2 = new LongPolling({ fetch: async () => ({ status: 404, ok: false, text: async () => "{}" }) }, {});
  await assert.rejects(t2.connect("https://gw.test/hub?id=T"), (e) => e.status === 404 && e.message === "HTTP 404");
});

test("Poster keeps one POST in flight and batches what queues meanwhile", async () => {
  const posts = [];
  let release;
  const env = {
    fetch: (url, init) => {
      posts.push([url, init]);
      return new Promise((resolve) => (release = () => resolve({ ok: true, status: 200 })));
    },
    setTimeout: (fn) => fn(),
  };
  const poster = new Poster(env, { withCredentials: true }, "https://gw.test/hub?id=T", assert.fail);
  poster.send("a");
  poster.send("b");
  poster.send("c");
  await flush();
  assert.deepEqual(posts.map(([, init]) => init.body), ["a"]);
  release();
  await flush();
  assert.deepEqual(posts.map(([, init]) => init.body), ["a", "bc"]);
  assert.ok(posts.every(([url, init]) => url === "https://gw.test/hub?id=T" && init.method === "POST" && init.credentials === "include"));
  release();
  await flush();
  assert.equal(peek(poster, "_busy"), false);
});

test("Poster retries a 409 or 503 with the same body, then reports other failures", async () => {
  const statuses = [409, 503, 200, 500];
  const bodies = [];
  const clock = new FakeClock();
  const env = {
    fetch: async (url, init) => {
      bodies.push([clock.now(), init.body]);
      const status = statuses.shift();
      return { ok: status === 200, status };
    },
    setTimeout: clock.setTimeout,
  };
  const errors = [];
  const poster = new Poster(env, {}, "u", (e) => errors.push(e));
  poster.send("x");
  await clock.advance(1000);
  poster.send("y");
  await clock.advance(1000);
  assert.deepEqual(bodies, [[0, "x"], [100, "x"], [300, "x"], [1000, "y"]]);
  assert.equal(errors[0].message, "POST failed: HTTP 500");
  assert.equal(errors[0].status, 500);
});

test("Poster gives up on a 503 after 10 tries", async () => {
  const clock = new FakeClock();
  let posts = 0;
  const env = {
    fetch: async () => (posts++, { ok: false, status: 503 }),
    setTimeout: clock.setTimeout,
  };
  const errors = [];
  new Poster(env, {}, "u", (e) => errors.push(e)).send("x");
  await clock.advance(10000);
  assert.equal(posts, 10);
  assert.deepEqual(errors.map((e) => e.message), ["POST failed: HTTP 503"]);
});

test("Poster of a streaming transport reports an answer saying the server has no stream; others ignore it", async () => {
  const headers = { get: (name) => (name === "x-gateway-stream" ? "none" : null) };
  const env = { fetch: async () => ({ ok: true, status: 200, headers }), setTimeout: (fn) => fn() };
  const errors = { watch: [], plain: [] };
  new Poster(env, {}, "u", (e) => errors.watch.push(e.message), true).send("x");
  new Poster(env, {}, "u", (e) => errors.plain.push(e.message)).send("x");
  await flush();
  assert.deepEqual(errors, { watch: ["no stream at the server"], plain: [] });
});

test("ServerSentEvents and ForeverFrame watch their POST answers; LongPolling does not", async () => {
  const watched = {};
  for (const T of [ServerSentEvents, ForeverFrame, LongPolling]) {
    const headers = { get: () => "none" };
    let polls = 0;
    const env = {
      // the first poll answers at once, the next ones are held
      fetch: (url, init) => (init.method === "GET" && polls++ ? new Promise(() => {}) : Promise.resolve({ ok: true, status: 200, headers, text: async () => "" })),
      setTimeout: (fn) => fn(),
      EventSource: class { close() {} },
      document: { readyState: "loading" },
      window: { addEventListener() {}, removeEventListener() {} },
      location: { origin: "https://app.test" },
    };
    const transport = new T(env, {});
    const closed = [];
    transport.onclose = (e) => closed.push(e.message);
    transport.connect("https://gw.test/hub?id=T").catch(() => {});
    await flush();
    transport.send("x");
    await flush();
    watched[T.transportName] = closed;
    transport.stop();
  }
  assert.deepEqual(watched, {
    ServerSentEvents: ["no stream at the server"],
    ForeverFrame: ["no stream at the server"],
    LongPolling: [],
  });
});

test("supported() reads only the injected environment", () => {
  const none = {};
  assert.deepEqual(TRANSPORTS.map((T) => T.supported(none)), [false, false, false, false]);
  const env = { WebSocket: 1, EventSource: 1, fetch: 1, document: {}, window: { postMessage() {} }, location: {} };
  assert.deepEqual(TRANSPORTS.map((T) => T.supported(env)), [true, true, true, true]);
  assert.equal(ServerSentEvents.supported({ EventSource: 1 }), false);
  assert.equal(WebSockets.supported({ WebSocket: 1 }), true);
});

test("plan: the server's order by default; the requested names restrict and reorder", async () => {
  const { plan } = await import("../src/index.js");
  const offer = (names) => names.map((transport) => ({ transport, transferFormats: ["Text"] }));
  const env = { WebSocket: 1, fetch: 1 };
  const row = (entries) => entries.map((e) => `${e.name}${e.skip ? ":" + e.skip : ""}`);
  assert.deepEqual(row(plan(offer(["LongPolling", "WebSockets"]), null, env, "Text")), ["LongPolling", "WebSockets"]);
  assert.deepEqual(row(plan(offer(ALL), ["LongPolling", "WebSockets"], env, "Text")), ["LongPolling", "WebSockets"]);
  assert.deepEqual(row(plan(offer(["WebSockets"]), ["LongPolling"], env, "Text")), ["LongPolling:not offered by the server"]);
  assert.deepEqual(row(plan(offer(["ServerSentEvents"]), null, env, "Text")), ["ServerSentEvents:not supported here"]);
  assert.deepEqual(row(plan([{ transport: "WebSockets", transferFormats: ["Binary"] }], null, env, "Text")), ["WebSockets:no Text transfer format"]);
  const formats = [{ transport: "WebSockets", transferFormats: ["Text", "Binary"] }, { transport: "ServerSentEvents", transferFormats: ["Text"] }];
  assert.deepEqual(row(plan(formats, null, { WebSocket: 1, EventSource: 1, fetch: 1 }, "Binary")), ["WebSockets", "ServerSentEvents:no Binary transfer format"]);
});
