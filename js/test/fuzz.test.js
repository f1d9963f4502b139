// Property-style fuzzing of the client's parsers with a seeded generator (no dependency): whatever the server or
// a proxy sends, the splitter, the record parser, the message buffer and the hub answer with their documented
// failures only, and what was written reads back the same.
import { test } from "node:test";
import assert from "node:assert/strict";
import { peek } from "../testing/private.js";
import { parse, write, RS, MessageType } from "../src/protocol.js";
import { RecordSplitter } from "../testing/splitter.js";
import { MessageBuffer } from "../src/buffer.js";
import { ALL, setup, start } from "../testing/helpers.js";

const SEEDS = [1, 2, 3, 42, 1234, 99991];

/** mulberry32: a small seeded PRNG, so that a failure names its seed and replays exactly. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = (items) => items[int(0, items.length - 1)];
  return { next, int, pick };
}

// Characters that break naive parsers: the separator, quotes, escapes, line breaks, markup, JS line terminators,
// a lone surrogate, astral characters, NUL.
const NASTY = [RS, '"', "\\", "\n", "\r", "<", "</script>", "\u2028", "\u2029", "\ud800", "😀", "\u0000", "{", "}", "[", "]", ":", ","];

function text(r, max = 40) {
  let out = "";
  const n = r.int(0, max);
  for (let i = 0; i < n; i++) {
    const roll = r.next();
    out += roll < 0.3 ? r.pick(NASTY) : roll < 0.6 ? String.fromCharCode(r.int(32, 126)) : String.fromCharCode(r.int(0, 0xffff));
  }
  return out;
}

function value(r, depth = 0) {
  const roll = r.int(0, depth > 3 ? 3 : 6);
  if (roll === 0) return null;
  if (roll === 1) return r.next() < 0.5;
  if (roll === 2) return r.pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e-7]);
  if (roll === 3) return text(r, 12);
  if (roll === 4) return Array.from({ length: r.int(0, 4) }, () => value(r, depth + 1));
  const obj = {};
  for (let i = r.int(0, 4); i > 0; i--) obj[text(r, 6)] = value(r, depth + 1);
  return obj;
}

function message(r) {
  const type = r.int(1, 9);
  const base = { type };
  if (type === 1 || type === 4) Object.assign(base, { target: text(r, 10), arguments: [value(r), value(r)] });
  if (type >= 2 && type <= 5) base.invocationId = String(r.int(1, 1e6));
  if (type === 2) base.item = value(r);
  if (type === 3) base.result = value(r);
  if (type === 7 && r.next() < 0.5) base.error = text(r, 20);
  if (type === 8 || type === 9) base.sequenceId = r.int(1, 1000);
  return base;
}

/** Cuts `s` at random places (one character at a time, sometimes). */
function split(r, s) {
  if (r.next() < 0.2) return [...s];
  const parts = [];
  let at = 0;
  while (at < s.length) {
    const n = r.int(1, Math.max(1, Math.ceil(s.length / 3)));
    parts.push(s.slice(at, at + n));
    at += n;
  }
  return parts;
}

// Strings of the lone-surrogate kind are not valid UTF-16 text on the wire: JSON.stringify escapes them, so they
// come back equal. JSON has no -0 and no undefined: the generator makes neither.
test("written messages split anywhere read back the same, in order", () => {
  for (const seed of SEEDS) {
    const r = rng(seed);
    for (let round = 0; round < 200; round++) {
      const messages = Array.from({ length: r.int(1, 5) }, () => message(r));
      const stream = messages.map(write).join("");
      const splitter = new RecordSplitter();
      const out = [];
      for (const part of split(r, stream)) out.push(...splitter.push(part).map(parse));
      assert.deepEqual(out, messages, `seed ${seed} round ${round}`);
      assert.equal(splitter.rest, "", `seed ${seed} round ${round}`);
    }
  }
});

test("the splitter loses and invents nothing on any text", () => {
  for (const seed of SEEDS) {
    const r = rng(seed);
    for (let round = 0; round < 300; round++) {
      const input = text(r, 80);
      const splitter = new RecordSplitter();
      const records = [];
      for (const part of split(r, input)) records.push(...splitter.push(part));
      const pieces = input.split(RS);
      assert.deepEqual(records, pieces.slice(0, -1).filter(Boolean), `seed ${seed} round ${round}`);
      assert.equal(splitter.rest, pieces[pieces.length - 1], `seed ${seed} round ${round}`);
    }
  }
});

function parseOutcome(record) {
  try {
    return parse(record);
  } catch (error) {
    assert.equal(error.constructor, Error, `parse threw ${error.constructor.name} for ${JSON.stringify(record)}`);
    assert.match(error.message, /^invalid record: /);
    return error;
  }
}

test("parse answers an object or its own Error, never another exception", () => {
  const deep = "[".repeat(100_000);
  const fixed = [deep, "{" + '"a":'.repeat(50_000), "1e999", "NaN", "null", '"x"', "", "\u0000", "\ud800"];
  for (const record of fixed) parseOutcome(record);
  for (const seed of SEEDS) {
    const r = rng(seed);
    for (let round = 0; round < 500; round++) {
      const record = r.next() < 0.5 ? text(r, 60) : JSON.stringify(value(r)).slice(0, r.int(0, 80));
      const outcome = parseOutcome(record);
      if (!(outcome instanceof Error)) assert.equal(typeof outcome, "object");
    }
  }
});

test("parse refuses a record that is a JSON array, as the server does", () => {
  assert.throws(() => parse("[]"), /invalid record/);
  assert.throws(() => parse('[{"type":1}]'), /invalid record/);
});

test("the message buffer delivers each trackable message once, whatever the resumes replay", () => {
  for (const seed of SEEDS) {
    const r = rng(seed);
    for (let round = 0; round < 100; round++) {
      const buffer = new MessageBuffer(true);
      const sent = Array.from({ length: r.int(1, 40) }, (_, i) => ({ type: 1, target: "m", arguments: [i + 1] }));
      const delivered = [];
      let acked = 0; // what the peer knows we have
      let at = 0; // the next message the peer sends
      while (at < sent.length) {
        if (r.next() < 0.15) {
          // A resume: the peer starts again from the first message we have not acked.
          buffer.sequence(acked + 1);
          at = acked;
          continue;
        }
        if (r.next() < 0.2) acked = peek(buffer, "latest"); // an ack goes out
        const m = sent[at++];
        if (buffer.received(m)) delivered.push(m.arguments[0]);
      }
      assert.deepEqual(delivered, sent.map((m) => m.arguments[0]), `seed ${seed} round ${round}`);
    }
  }
});

test("the message buffer keeps exactly the unacked records and replays them after their Sequence", () => {
  for (const seed of SEEDS) {
    const r = rng(seed);
    const buffer = new MessageBuffer(true);
    let sent = 0;
    let acked = 0;
    for (let step = 0; step < 500; step++) {
      if (r.next() < 0.6) {
        const m = r.next() < 0.8 ? { type: 1, target: "x", arguments: [++sent] } : { type: 6 }; // pings are not kept
        buffer.sending(m, write(m));
      } else {
        acked = r.int(acked, sent);
        buffer.ack(acked);
      }
      const replay = new RecordSplitter().push(buffer.replay().join("")).map(parse);
      assert.deepEqual(replay[0], { type: MessageType.Sequence, sequenceId: acked + 1 }, `seed ${seed} step ${step}`);
      assert.deepEqual(
        replay.slice(1).map((m) => m.arguments[0]),
        Array.from({ length: sent - acked }, (_, i) => acked + 1 + i),
        `seed ${seed} step ${step}`
      );
    }
  }
});

function garbageRecord(r) {
  const roll = r.next();
  if (roll < 0.25) return text(r, 30);
  if (roll < 0.5) return JSON.stringify(value(r));
  const m = message(r);
  for (let i = r.int(0, 3); i > 0; i--) m[r.pick(["type", "target", "arguments", "invocationId", "error", "sequenceId", "result", "item"])] = value(r);
  return JSON.stringify(m);
}

test("a hub fed any records either carries on or closes with an Error; nothing escapes", async () => {
  for (const seed of SEEDS) {
    const r = rng(seed);
    for (let round = 0; round < 15; round++) {
      const { hub, clock, server, events } = setup({ transports: [r.pick(ALL)] });
      assert.equal(await start(hub, clock), null, `seed ${seed} round ${round}`);
      hub.on("m", () => {});
      const conn = server.last;
      const records = Array.from({ length: r.int(1, 8) }, () => garbageRecord(r));
      const stream = records.map((x) => x + RS).join("");
      for (const part of split(r, stream)) conn.stream?.write(part);
      await clock.advance(100);
      const closes = events.filter(([kind]) => kind === "close");
      for (const [, error] of closes) assert.ok(error === undefined || error === null || error instanceof Error, `seed ${seed} round ${round}`);
      assert.deepEqual(clock.errors, [], `seed ${seed} round ${round}: a timer threw`);
      assert.ok(["Connected", "Reconnecting", "Disconnected"].includes(hub.state), hub.state);
      await hub.stop();
    }
  }
});
