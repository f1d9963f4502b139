// Shared mode without a browser: tabs (SharedHubConnection) and the Host that multiplexes them over one
// HubConnection, wired through in-memory ports that clone every message as postMessage does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeServer, FakeClock } from "../testing/fakes.js";
import { HubConnection, TRANSPORTS } from "../src/index.js";
import { Host, SharedHubConnection, EVICT_AFTER, withShared, shared } from "../src/shared/index.js";

const later = (fn) => Promise.resolve().then(fn);

/** A server, a clock, a host and a `tab()` factory; every tab gets its own port to the host. */
function browser() {
  const server = new FakeServer();
  const clock = new FakeClock();
  const channels = new Map();
  const host = new Host(HubConnection, (tab, message) => later(() => channels.get(tab)?.onmessage?.(structuredClone(message))), {
    env: server.env(clock),
    now: clock.now,
  });
  let n = 0;
  const tab = (options = {}) => {
    const id = ++n;
    const channel = { post: (message) => later(() => host.receive(id, structuredClone(message))), onmessage: null };
    channels.set(id, channel);
    const hub = new SharedHubConnection(server.base, { transports: ["WebSockets"], ...options }, channel);
    hub.id = id;
    return hub;
  };
  return { server, clock, host, tab, channels };
}

async function started(ctx, count) {
  const tabs = Array.from({ length: count }, () => ctx.tab());
  const starts = tabs.map((t) => t.start());
  await ctx.clock.advance(10);
  await Promise.all(starts);
  return tabs;
}

const invocations = (conn, target) => conn.received.filter((m) => m.target === target).map((m) => m.arguments);

test("tabs share one connection; each invoke's result goes back to the tab that asked", async () => {
  const ctx = browser();
  const [a, b] = await started(ctx, 2);
  assert.equal(ctx.server.count, 1, "one negotiate for two tabs");
  assert.deepEqual([a.state, b.state, a.connectionId, b.connectionId], ["Connected", "Connected", "cid1", "cid1"]);
  const results = Promise.all([a.invoke("Echo", "from a"), b.invoke("Echo", "from b"), a.invoke("Echo", 3)]);
  await ctx.clock.advance(10);
  assert.deepEqual(await results, ["from a", "from b", 3]);
  const failed = b.invoke("Fail").catch((e) => e.message);
  await ctx.clock.advance(10);
  assert.equal(await failed, "boom");
});

test("a server call reaches every tab that listens for its name, and only those", async () => {
  const ctx = browser();
  const [a, b, c] = await started(ctx, 3);
  const got = { a: [], b: [], c: [] };
  a.on("echo", (x) => got.a.push(x));
  b.on("Echo", (x) => got.b.push(x));
  c.on("other", (x) => got.c.push(x));
  await ctx.clock.advance(10);
  ctx.server.last.invoke("echo", 1);
  await ctx.clock.advance(10);
  b.off("echo");
  await ctx.clock.advance(10);
  ctx.server.last.invoke("echo", 2);
  await ctx.clock.advance(10);
  assert.deepEqual(got, { a: [1, 2], b: [1], c: [] });
});

test("a client result is answered by the first listening tab, once", async () => {
  const ctx = browser();
  const [a, b] = await started(ctx, 2);
  a.on("ask", (x) => `a:${x}`);
  b.on("ask", (x) => `b:${x}`);
  await ctx.clock.advance(10);
  ctx.server.last.write({ type: 1, invocationId: "s1", target: "ask", arguments: [7] });
  await ctx.clock.advance(10);
  const answers = ctx.server.last.received.filter((m) => m.type === 3 && m.invocationId === "s1");
  assert.deepEqual(answers.map((m) => m.result), ["a:7"]);
});

test("Subscribe is counted: one tab's Unsubscribe or departure leaves the others subscribed", async () => {
  const ctx = browser();
  const [a, b] = await started(ctx, 2);
  const conn = ctx.server.last;
  await Promise.all([a.invoke("Subscribe", "job1"), b.invoke("Subscribe", "job1"), a.invoke("Subscribe", "job2"), ctx.clock.advance(10)]);
  assert.deepEqual(invocations(conn, "Subscribe"), [["job1"], ["job1"], ["job2"]], "every Subscribe reaches the server (it returns the job's state)");
  await Promise.all([a.invoke("Unsubscribe", "job1"), ctx.clock.advance(10)]);
  assert.deepEqual(invocations(conn, "Unsubscribe"), [], "b still holds job1");
  ctx.host.leave(a.id); // a's page went away: job2 had no other holder
  await ctx.clock.advance(10);
  assert.deepEqual(invocations(conn, "Unsubscribe"), [["job2"]]);
  await Promise.all([b.invoke("Unsubscribe", "job1"), ctx.clock.advance(10)]);
  assert.deepEqual(invocations(conn, "Unsubscribe"), [["job2"], ["job1"]], "the last holder's Unsubscribe goes through");
});

test("stream items and their end are routed to the tab that asked", async () => {
  const ctx = browser();
  const [a, b] = await started(ctx, 2);
  const items = { a: [], b: [] };
  let done = 0;
  a.stream("Counter", 3).subscribe({ next: (x) => items.a.push(x), complete: () => done++ });
  b.stream("Counter", 2).subscribe({ next: (x) => items.b.push(x), complete: () => done++ });
  await ctx.clock.advance(10);
  assert.deepEqual(items, { a: [0, 1, 2], b: [0, 1] });
  assert.equal(done, 2);
});

test("the last tab to leave closes the connection; a new tab opens a new one", async () => {
  const ctx = browser();
  const [a, b] = await started(ctx, 2);
  await a.stop();
  await ctx.clock.advance(10);
  assert.equal(ctx.host.hub.state, "Connected", "b still uses it");
  await b.stop();
  await ctx.clock.advance(10);
  assert.equal(ctx.host.hub, null);
  assert.ok(ctx.server.log.includes("DELETE https://app.test/hubs/echo?id=tok1"));
  const [c] = await started(ctx, 1);
  assert.equal(c.connectionId, "cid2");
});

test("a tab that stops answering the heartbeat is forgotten, and its holds released", async () => {
  const ctx = browser();
  const [a, b] = await started(ctx, 2);
  await Promise.all([a.invoke("Subscribe", "job1"), ctx.clock.advance(10)]);
  ctx.channels.get(a.id).post = () => {}; // a's page is gone without a word
  for (let t = 0; t <= EVICT_AFTER + 10000; t += 10000) {
    ctx.host.beat();
    await ctx.clock.advance(10000);
  }
  assert.deepEqual([...ctx.host.tabs.keys()], [b.id]);
  assert.deepEqual(invocations(ctx.server.last, "Unsubscribe"), [["job1"]]);
});

test("a tab that rejoins (a new host, or back from the back/forward cache) brings its names and holds", async () => {
  const ctx = browser();
  const [a] = await started(ctx, 1);
  const got = [];
  a.on("echo", (x) => got.push(x));
  await Promise.all([a.invoke("Subscribe", "job1"), ctx.clock.advance(10)]);
  ctx.host.tabs.delete(a.id); // the host forgot it (a new leader knows nobody)
  a.rejoin();
  await ctx.clock.advance(10);
  ctx.server.last.invoke("echo", 5);
  await ctx.clock.advance(10);
  assert.deepEqual(got, [5]);
  assert.deepEqual(ctx.host.tabs.get(a.id).holds.size, 1);
});

test("a failed start reaches every waiting tab with the attempts", async () => {
  const ctx = browser();
  ctx.server.mode.WebSockets = "refuse";
  const [a, b] = [ctx.tab(), ctx.tab()];
  const errors = Promise.all([a.start().catch((e) => e), b.start().catch((e) => e)]);
  await ctx.clock.advance(10);
  const [ea, eb] = await errors;
  assert.match(ea.message, /WebSockets failed/);
  assert.equal(eb.message, ea.message);
  assert.equal(a.attempts[0].transport, "WebSockets");
  assert.equal(a.state, "Disconnected");
});

// A page's globals for `shared()`: which of SharedWorker, Web Locks and BroadcastChannel it has.
function page({ worker = false, locks = false } = {}) {
  const made = [];
  const g = { location: { href: "https://app.test/page" }, addEventListener() {}, setInterval() {} };
  if (worker) {
    g.SharedWorker = class {
      constructor(url, options) {
        made.push(["worker", url, options.name]);
        this.port = { postMessage() {}, start() {} };
      }
    };
  }
  if (locks) {
    g.navigator = { locks: { request: (name) => made.push(["lock", name]) } };
    g.BroadcastChannel = class {
      postMessage() {}
    };
  }
  return { g, made };
}

test("shared mode picks a SharedWorker, else a leader tab, else the tab's own connection", async () => {
  const { shared } = await import("../src/shared/index.js");
  const url = "https://app.test/hubs/jobs";
  const w = page({ worker: true, locks: true });
  assert.ok(shared(HubConnection, url, { shared: true }, w.g) instanceof SharedHubConnection);
  assert.deepEqual(w.made, [["worker", "https://app.test/hubs/jobs/client.worker.js", "gateway"]]);
  const l = page({ locks: true });
  assert.ok(shared(HubConnection, url, { shared: true }, l.g) instanceof SharedHubConnection);
  assert.deepEqual(l.made, [["lock", "gateway:https://app.test/hubs/jobs"]]);
  const ff = page({ worker: true, locks: true });
  shared(HubConnection, url, { shared: true, transports: ["ForeverFrame"] }, ff.g);
  assert.deepEqual(ff.made.map(([kind]) => kind), ["lock"], "a worker has no document for ForeverFrame: a leader tab hosts it");
  const none = page();
  const own = shared(HubConnection, url, { shared: true, env: new FakeServer().env(new FakeClock()) }, none.g);
  assert.ok(own instanceof HubConnection, "neither: the tab connects on its own");
});

test("withShared: the subclass honours {shared: true}; without it the core throws", () => {
  const Shared = withShared(HubConnection);
  const env = new FakeServer().env(new FakeClock());
  assert.ok(new Shared("https://app.test/hubs/echo", { env }) instanceof HubConnection);
  assert.throws(() => new HubConnection("https://app.test/hubs/echo", { env, shared: true }), /load client\.shared\.js/);
});

// A page's environment that goes silent once `dead()`: no timer fires, no socket opens, no request answers.
function pageEnv(server, clock, dead) {
  const env = server.env(clock);
  return {
    ...env,
    setTimeout: (fn, ms) => clock.setTimeout(() => dead() || fn(), ms),
    fetch: (...args) => (dead() ? new Promise(() => {}) : env.fetch(...args)),
    WebSocket: class extends env.WebSocket {
      constructor(url) {
        if (dead()) throw new Error("the page is gone");
        super(url);
      }
    },
  };
}

// A browser without SharedWorker: tabs with Web Locks and BroadcastChannel, in memory.
function lockingBrowser(server, clock) {
  const channels = new Set();
  const queue = [];
  const grant = () => queue[0] && !queue[0].held && ((queue[0].held = true), queue[0].fn());
  const tab = () => {
    const mine = new Set();
    const g = {
      location: { href: "https://app.test/page" },
      addEventListener() {},
      setInterval() {},
      Gateway: { TRANSPORTS },
      navigator: {
        locks: {
          request: (name, fn) => {
            queue.push({ fn, g });
            grant();
          },
        },
      },
      BroadcastChannel: class {
        constructor() {
          channels.add(this);
          mine.add(this);
        }
        postMessage(data) {
          if (!channels.has(this)) return;
          for (const other of channels) if (other !== this) later(() => channels.has(other) && other.onmessage?.({ data: structuredClone(data) }));
        }
      },
    };
    const hub = shared(HubConnection, server.base, { shared: true, transports: ["WebSockets"], env: pageEnv(server, clock, () => dead) }, g);
    let dead = false;
    // The page goes away: its channel, timers and network are gone, its stream drops, the browser releases its lock.
    hub.close = () => {
      dead = true;
      mine.forEach((c) => channels.delete(c));
      server.drop();
      if (queue[0]?.g === g) queue.shift();
      grant();
    };
    return hub;
  };
  return { tab };
}

test("without SharedWorker, the next tab takes over the leader's connection and resumes it: no step lost or doubled", async () => {
  const server = new FakeServer();
  const clock = new FakeClock();
  const { tab } = lockingBrowser(server, clock);
  const [a, b, c] = [tab(), tab(), tab()];
  const got = { b: [], c: [] };
  b.on("progress", (x) => got.b.push(x));
  c.on("progress", (x) => got.c.push(x));
  await Promise.all([a.start(), b.start(), c.start(), clock.advance(50)]);
  assert.equal(server.count, 1);
  await Promise.all([b.invoke("Subscribe", "j1"), c.invoke("Subscribe", "j1"), clock.advance(50)]);
  const conn = server.last;
  conn.invoke("progress", 1);
  conn.invoke("progress", 2);
  await clock.advance(50);
  a.close(); // the leader's page closes
  conn.invoke("progress", 3); // while no tab hosts the connection
  await clock.advance(50);
  conn.invoke("progress", 4);
  await clock.advance(2000);
  assert.deepEqual(got, { b: [1, 2, 3, 4], c: [1, 2, 3, 4] });
  assert.equal(server.count, 1, "the same connection, resumed");
  assert.deepEqual([b.state, c.state, b.connectionId], ["Connected", "Connected", "cid1"]);
  assert.equal(await Promise.all([c.invoke("Echo", "after"), clock.advance(50)]).then(([r]) => r), "after");
  assert.deepEqual(invocations(conn, "Unsubscribe"), []);
});

test("a takeover after the server forgot the connection starts a new one and joins the tabs' groups again", async () => {
  const server = new FakeServer();
  const clock = new FakeClock();
  const { tab } = lockingBrowser(server, clock);
  const [a, b] = [tab(), tab()];
  await Promise.all([a.start(), b.start(), clock.advance(50)]);
  await Promise.all([b.invoke("Subscribe", "j1"), clock.advance(50)]);
  const old = server.last;
  a.close();
  server.forget(old); // the reconnect window passed: the token now answers 404
  await clock.advance(2000);
  assert.equal(server.count, 2, "a new connection");
  assert.deepEqual([b.state, b.connectionId], ["Connected", "cid2"]);
  assert.deepEqual(invocations(server.last, "Subscribe"), [["j1"]]);
});
