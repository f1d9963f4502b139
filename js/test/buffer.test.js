import { test } from "node:test";
import assert from "node:assert/strict";
import { peek } from "../testing/private.js";
import { MessageBuffer } from "../src/buffer.js";

const inv = (n) => ({ type: 1, target: "t", arguments: [n] });

test("sent trackable records are kept until acked; pings are not", () => {
  const buffer = new MessageBuffer(true);
  buffer.sending(inv(1), "r1");
  buffer.sending({ type: 6 }, "ping");
  buffer.sending(inv(2), "r2");
  buffer.sending(inv(3), "r3");
  assert.deepEqual(peek(buffer, "unacked"), [[1, "r1"], [2, "r2"], [3, "r3"]]);
  buffer.ack(2);
  assert.deepEqual(peek(buffer, "unacked"), [[3, "r3"]]);
  assert.equal(buffer.replay().join(""), '{"type":9,"sequenceId":3}\x1er3');
  buffer.ack(3);
  assert.equal(buffer.replay().join(""), '{"type":9,"sequenceId":4}\x1e');
});

test("a replayed message already processed is dropped after a Sequence", () => {
  const buffer = new MessageBuffer(true);
  assert.deepEqual([1, 2, 3].map((n) => buffer.received(inv(n))), [true, true, true]);
  buffer.sequence(2); // the server replays from 2: ids 2 and 3 are duplicates, 4 is new
  assert.deepEqual([2, 3, 4].map((n) => buffer.received(inv(n))), [false, false, true]);
  assert.equal(peek(buffer, "latest"), 4);
  assert.equal(buffer.received({ type: 6 }), true);
});

test("a Sequence past the next expected id means lost messages", () => {
  const buffer = new MessageBuffer(true);
  buffer.received(inv(1));
  buffer.sequence(2);
  assert.throws(() => buffer.sequence(4), /Sequence 4 skips messages: last received was 1/);
});

test("a disabled buffer keeps nothing and drops nothing", () => {
  const buffer = new MessageBuffer(false);
  buffer.sending(inv(1), "r1");
  assert.deepEqual(peek(buffer, "unacked"), []);
  buffer.sequence(1);
  assert.equal(buffer.received(inv(1)), true);
  assert.equal(buffer.received(inv(1)), true);
});
