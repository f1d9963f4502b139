// The job view's logic (no DOM): JobProgress applies a snapshot then live events, each seq once and in order;
// JobWatch keeps it subscribed over a real HubConnection talking to the fake server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALL, setup, start } from "../testing/helpers.js";
import { NO_REPLY } from "../testing/fakes.js";
import { FINAL, JobProgress, JobWatch } from "../src/job.js";

const event = (seq, state = "Processing", jobId = "j1") => ({ jobId, state, percent: seq, message: `step ${seq}`, seq });
const seqs = (events) => events.map((e) => e.seq);

/** A job on the fake server: `Subscribe` joins, then returns the snapshot; `publish` records an event and sends it. */
function jobServer(server, jobId = "j1") {
  const job = { events: [], members: new Set(), calls: [], cancelled: false };
  const snapshot = () => ({ ...job.events.at(-1), log: [...job.events] });
  server.methods.Subscribe = ([id], conn) => {
    job.calls.push(["Subscribe", conn.id]);
    if (id !== jobId) throw new Error(`unknown job '${id}'`);
    job.members.add(conn);
    job.beforeSnapshot?.(conn);
    const taken = snapshot();
    job.afterSnapshot?.(conn);
    return taken;
  };
  server.methods.Unsubscribe = ([id], conn) => (job.calls.push(["Unsubscribe", conn.id]), job.members.delete(conn), null);
  server.methods.Cancel = () => (job.cancelled = true);
  job.publish = (state = "Processing") => {
    const e = event(job.events.length + 1, state, jobId);
    job.events.push(e);
    for (const conn of job.members) if (server.connections.has(conn.token)) conn.invoke("progress", e);
    return e;
  };
  return job;
}

async function watching({ transport = "WebSockets", before = 1, startFirst = true } = {}) {
  const ctx = setup({ transports: [transport] });
  const job = jobServer(ctx.server);
  for (let i = 0; i < before; i++) job.publish(i ? "Processing" : "Pending");
  const seen = { events: [], done: [], errors: [] };
  const on = { event: (e) => seen.events.push(e), done: (e) => seen.done.push(e), error: (e) => seen.errors.push(e.message) };
  if (startFirst) assert.equal(await start(ctx.hub, ctx.clock), null);
  const watch = new JobWatch(ctx.hub, "j1", on, { timers: ctx.clock }).start();
  await ctx.clock.advance(10);
  return { ...ctx, job, seen, watch };
}

test("JobProgress: the snapshot's log, then live events after it; old, repeated and other jobs' events are dropped", () => {
  const p = new JobProgress("j1");
  assert.deepEqual(p.live(event(3)), [], "held: no snapshot yet");
  const applied = p.snapshot({ ...event(2), log: [event(1, "Pending"), event(2)] });
  assert.deepEqual(seqs(applied), [1, 2, 3], "the snapshot's log, then the event held meanwhile");
  assert.deepEqual(p.live(event(3)), []);
  assert.deepEqual(p.live(event(4, "Processing", "other")), []);
  assert.deepEqual(seqs(p.live(event(4))), [4]);
  assert.deepEqual(p.live({ jobId: "j1", state: "Processing" }), [], "no seq: ignored");
  assert.deepEqual(seqs(p.live(event(5, "Completed"))), [5]);
  assert.deepEqual([seqs(p.log), p.done, p.current.state, p.truncated], [[1, 2, 3, 4, 5], true, "Completed", false]);
  assert.deepEqual(FINAL, ["Completed", "Failed", "Cancelled"]);
});

test("JobProgress: a gap holds live events until a snapshot fills it; a capped log says so", () => {
  const p = new JobProgress("j1", 3);
  p.snapshot({ ...event(5), log: [event(4), event(5)], logTruncated: true });
  assert.equal(p.truncated, true);
  assert.deepEqual(p.live(event(7)), [], "6 is missing");
  assert.equal(p.waiting, true);
  assert.deepEqual(p.live(event(8)), []);
  assert.deepEqual(seqs(p.snapshot({ ...event(7), log: [event(4), event(5), event(6), event(7)] })), [6, 7, 8]);
  assert.deepEqual(seqs(p.log), [6, 7, 8], "at most maxLog entries");
});

test("JobProgress: whatever the interleaving of the snapshot with live events, each seq is applied once, in order", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let round = 0; round < 500; round++) {
    const total = 1 + Math.floor(random() * 30);
    const joined = Math.floor(random() * (total + 1)); // events published before the subscriber joined the group
    const read = joined + Math.floor(random() * (total - joined + 1)); // ... and before the snapshot was read
    const answered = read + Math.floor(random() * (total - read + 1)); // live events that arrive before the answer
    const p = new JobProgress("j1");
    const applied = [];
    const all = Array.from({ length: total }, (_, i) => event(i + 1));
    for (const e of all.slice(joined, answered)) applied.push(...p.live(e));
    applied.push(...p.snapshot({ ...(all[read - 1] || {}), jobId: "j1", log: all.slice(0, read) }));
    for (const e of all.slice(answered)) applied.push(...p.live(e));
    assert.deepEqual(seqs(applied), all.map((e) => e.seq), `round ${round}: ${total} ${joined} ${read} ${answered}`);
  }
});

for (const transport of ALL) {
  test(`${transport}: the watch subscribes, applies the snapshot, then every live step once; final: unsubscribes`, async () => {
    const { clock, job, seen, watch } = await watching({ transport, before: 3 });
    assert.deepEqual(seqs(seen.events), [1, 2, 3]);
    job.publish();
    job.publish("Completed");
    await clock.advance(10);
    assert.deepEqual(seqs(seen.events), [1, 2, 3, 4, 5]);
    assert.deepEqual(seqs(seen.done), [5]);
    assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe", "Unsubscribe"]);
    assert.equal(watch.progress.done, true);
  });
}

test("a watch started before the connection subscribes once it is connected", async () => {
  const { hub, clock, job, seen } = await watching({ startFirst: false, before: 2 });
  assert.deepEqual(job.calls, []);
  assert.equal(await start(hub, clock, 200), null);
  await clock.advance(200);
  assert.deepEqual(seqs(seen.events), [1, 2]);
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe"]);
});

test("a live step that overtakes the Subscribe answer is applied after the snapshot, once", async () => {
  const ctx = setup({ transports: ["LongPolling"] });
  const job = jobServer(ctx.server);
  job.publish("Pending");
  job.beforeSnapshot = () => job.publish(); // 2: after the join, before the read: live and in the snapshot
  job.afterSnapshot = () => job.publish(); // 3: after the read: live only, and ahead of the answer
  assert.equal(await start(ctx.hub, ctx.clock), null);
  const got = [];
  new JobWatch(ctx.hub, "j1", { event: (e) => got.push(e) }, { timers: ctx.clock }).start();
  await ctx.clock.advance(10);
  assert.deepEqual(seqs(got), [1, 2, 3]);
});

test("a resumed connection keeps its subscription; a new connection id subscribes again, with no step lost or doubled", async () => {
  const { server, clock, job, seen, hub } = await watching({ before: 2 });
  server.drop();
  job.publish(); // 3: replayed on the resume
  await clock.advance(10);
  assert.equal(hub.connectionId, "cid1");
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe"], "a resume needs no new Subscribe");
  server.forget(); // the server lost the connection: the client starts afresh with a new id
  job.publish(); // 4: nobody receives it live
  await clock.advance(10);
  assert.equal(hub.state, "Connected");
  assert.notEqual(hub.connectionId, "cid1");
  job.publish("Completed"); // 5
  await clock.advance(10);
  assert.deepEqual(job.calls.map(([name, id]) => `${name} ${id}`), ["Subscribe cid1", `Subscribe ${hub.connectionId}`, `Unsubscribe ${hub.connectionId}`]);
  assert.deepEqual(seqs(seen.events), [1, 2, 3, 4, 5]);
});

test("missing live steps make the watch subscribe again: the snapshot fills the gap", async () => {
  const { server, clock, job, seen } = await watching({ before: 1 });
  const conn = server.last;
  job.members.delete(conn);
  job.publish(); // 2: lost
  job.members.add(conn);
  job.publish(); // 3: past a gap
  await clock.advance(10);
  assert.deepEqual(seqs(seen.events), [1, 2, 3]);
  assert.equal(job.calls.length, 2);
});

test("an unknown job is an error; Cancel answers what the server said; a stopped watch applies nothing more", async () => {
  const ctx = setup({ transports: ["WebSockets"] });
  const job = jobServer(ctx.server);
  assert.equal(await start(ctx.hub, ctx.clock), null);
  const errors = [];
  new JobWatch(ctx.hub, "nope", { error: (e) => errors.push(e.message) }, { timers: ctx.clock }).start();
  await ctx.clock.advance(10);
  assert.deepEqual(errors, ["unknown job 'nope'"]);

  job.publish("Pending");
  const got = [];
  const watch = new JobWatch(ctx.hub, "j1", { event: (e) => got.push(e) }, { timers: ctx.clock }).start();
  await ctx.clock.advance(10);
  const cancelled = watch.cancel();
  await ctx.clock.advance(10);
  assert.equal(await cancelled, true);
  assert.equal(job.cancelled, true);
  watch.stop();
  job.publish();
  await ctx.clock.advance(10);
  assert.deepEqual(seqs(got), [1]);
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe", "Subscribe", "Unsubscribe"]);
});

test("silence while the job runs makes the watch subscribe again: a missed last step (Completed) still arrives", async () => {
  const ctx = setup({ transports: ["WebSockets"] });
  const job = jobServer(ctx.server);
  job.publish("Pending");
  assert.equal(await start(ctx.hub, ctx.clock), null);
  const got = [];
  const watch = new JobWatch(ctx.hub, "j1", { event: (e) => got.push(e) }, { timers: ctx.clock, quietMs: 5000 }).start();
  await ctx.clock.advance(10);
  const conn = ctx.server.last;
  await ctx.clock.advance(4000);
  job.publish(); // 2: heard, so the silence starts again
  await ctx.clock.advance(4000);
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe"]);
  job.members.delete(conn);
  job.publish("Completed"); // 3: lost, and nothing follows it
  await ctx.clock.advance(500);
  assert.deepEqual(seqs(got), [1, 2]);
  await ctx.clock.advance(1000);
  assert.deepEqual(seqs(got), [1, 2, 3]);
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe", "Subscribe", "Unsubscribe"]);
  await ctx.clock.advance(20000);
  assert.equal(job.calls.length, 3, "a final job is not subscribed again");
  watch.stop();
});

test("a Subscribe never answered (its Completion lost) is asked again after the quiet time, and the answer counts", async () => {
  const ctx = setup({ transports: ["WebSockets"] });
  const job = jobServer(ctx.server);
  job.publish("Pending");
  const answer = ctx.server.methods.Subscribe;
  ctx.server.methods.Subscribe = (args, conn) => (answer(args, conn), NO_REPLY); // joined, but no answer arrives
  assert.equal(await start(ctx.hub, ctx.clock), null);
  const got = [];
  const watch = new JobWatch(ctx.hub, "j1", { event: (e) => got.push(e) }, { timers: ctx.clock, quietMs: 5000 }).start();
  await ctx.clock.advance(10);
  ctx.server.methods.Subscribe = answer;
  job.members.clear();
  job.publish("Completed"); // sent to nobody: only a new Subscribe can bring it
  await ctx.clock.advance(4900);
  assert.deepEqual(seqs(got), [], "the first Subscribe is still waited for");
  await ctx.clock.advance(200);
  assert.deepEqual(seqs(got), [1, 2]);
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe", "Subscribe", "Unsubscribe"]);
  watch.stop();
});

test("a Subscribe the hub refuses is reported once, not asked again every quiet time", async () => {
  const ctx = setup({ transports: ["WebSockets"] });
  const job = jobServer(ctx.server);
  assert.equal(await start(ctx.hub, ctx.clock), null);
  const errors = [];
  const watch = new JobWatch(ctx.hub, "nope", { error: (e) => errors.push(e.message) }, { timers: ctx.clock, quietMs: 5000 }).start();
  await ctx.clock.advance(20000); // four quiet times
  assert.deepEqual(errors, ["unknown job 'nope'"]);
  assert.deepEqual(job.calls.map(([name]) => name), ["Subscribe"]);
  watch.stop();
});
