// The MessagePack hub protocol: the spec's byte vectors, round trips of every message and value type, and
// a parser fed whole, byte by byte and with trailing data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessagePackHubProtocol, encode, decode } from "../src/msgpack.js";

const protocol = new MessagePackHubProtocol();
const hex = (text) => Uint8Array.from(text.trim().split(/\s+/), (b) => parseInt(b, 16));
const framed = (body) => Uint8Array.of(body.length, ...body);

// HubProtocol.md, "MessagePack (MsgPack) encoding": each body and the message it decodes to.
const VECTORS = [
  ["0x96 0x01 0x80 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90", { type: 1, invocationId: "xyz", target: "method", arguments: [42] }],
  ["0x96 0x01 0x80 0xc0 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90", { type: 1, target: "method", arguments: [42] }],
  ["0x96 0x04 0x80 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90", { type: 4, invocationId: "xyz", target: "method", arguments: [42] }],
  ["0x94 0x02 0x80 0xa3 0x78 0x79 0x7a 0x2a", { type: 2, invocationId: "xyz", item: 42 }],
  ["0x95 0x03 0x80 0xa3 0x78 0x79 0x7a 0x01 0xa5 0x45 0x72 0x72 0x6f 0x72", { type: 3, invocationId: "xyz", error: "Error" }],
  ["0x94 0x03 0x80 0xa3 0x78 0x79 0x7a 0x02", { type: 3, invocationId: "xyz" }],
  ["0x95 0x03 0x80 0xa3 0x78 0x79 0x7a 0x03 0x2a", { type: 3, invocationId: "xyz", result: 42 }],
  ["0x93 0x05 0x80 0xa3 0x78 0x79 0x7a", { type: 5, invocationId: "xyz" }],
  ["0x91 0x06", { type: 6 }],
  ["0x92 0x07 0xa3 0x78 0x79 0x7a", { type: 7, error: "xyz" }],
  ["0x93 0x07 0xa3 0x78 0x79 0x7a 0xc3", { type: 7, error: "xyz", allowReconnect: true }],
  [
    "0x96 0x01 0x82 0xa1 0x78 0xa1 0x79 0xa1 0x7a 0xa1 0x7a 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90",
    { type: 1, headers: { x: "y", z: "z" }, invocationId: "xyz", target: "method", arguments: [42] },
  ],
];
// The spec writes these ids as uint8 ("any unsigned int size is fine"); we write the shortest form.
const READ_ONLY = [
  ["0x92 0x08 0xcc 0x24", { type: 8, sequenceId: 36 }],
  ["0x92 0x09 0xcc 0x13", { type: 9, sequenceId: 19 }],
];

test("the spec's vectors: written byte for byte, and read back", () => {
  for (const [body, message] of VECTORS) {
    assert.deepEqual(protocol.write(message), framed(hex(body)), body);
    assert.deepEqual(protocol.parse(framed(hex(body))), [message], body);
  }
  for (const [body, message] of READ_ONLY) assert.deepEqual(protocol.parse(framed(hex(body))), [message], body);
  assert.deepEqual(protocol.write({ type: 8, sequenceId: 36 }), Uint8Array.of(3, 0x92, 0x08, 0x24));
});

const ALL_VECTORS = [...VECTORS, ...READ_ONLY];
const STREAM = Uint8Array.from(ALL_VECTORS.flatMap(([body]) => [...framed(hex(body))]));
const MESSAGES = ALL_VECTORS.map(([, message]) => message);

test("the parser reads a whole buffer, one byte at a time, and keeps trailing data", () => {
  assert.deepEqual(protocol.parse(STREAM), MESSAGES);
  assert.deepEqual(protocol.parse(STREAM.buffer), MESSAGES, "an ArrayBuffer, as a WebSocket gives it");
  const state = {};
  const out = [];
  for (const byte of STREAM) out.push(...protocol.parse(Uint8Array.of(byte), state));
  assert.deepEqual(out, MESSAGES);
  assert.equal(state.rest.length, 0);
  const tail = Uint8Array.of(...STREAM, 0x05, 0x94, 0x02);
  const partial = {};
  assert.deepEqual(protocol.parse(tail, partial), MESSAGES);
  assert.deepEqual([...partial.rest], [0x05, 0x94, 0x02]);
  assert.deepEqual(protocol.parse(Uint8Array.of(0x80, 0xa0, 0x2a), partial), [{ type: 2, invocationId: "", item: 42 }]);
});

test("the VarInt length prefix: 1 to 5 bytes, least significant group first", () => {
  for (const size of [0, 127, 128, 5248, 16383, 16384, 70000]) {
    const message = { type: 2, invocationId: "s", item: "x".repeat(size) };
    const data = protocol.write(message);
    const body = encode([2, {}, "s", message.item]);
    const prefix = data.subarray(0, data.length - body.length);
    let value = 0;
    prefix.forEach((byte, i) => (value += (byte & 127) * 2 ** (7 * i)));
    assert.equal(value, body.length);
    assert.equal(prefix.length, body.length < 128 ? 1 : body.length < 16384 ? 2 : 3);
    assert.deepEqual(protocol.parse(data), [message]);
  }
  const state = {};
  assert.deepEqual(protocol.parse(Uint8Array.of(0x80, 0x29, ...new Uint8Array(5247)), state), [], "0x80 0x29 announces 5248 bytes: waits for the last");
  assert.equal(state.rest.length, 5249);
});

test("every message type round-trips, with every kind of value", () => {
  const values = [
    null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1,
    1.5, -0.25, 1e300, "", "héllo ✓", "x".repeat(31), "x".repeat(32), "y".repeat(300), "z".repeat(70000),
    Uint8Array.of(), Uint8Array.of(0, 1, 255), new Uint8Array(300), new Uint8Array(70000),
    [], [1, [2, [3]]], Array.from({ length: 20 }, (_, i) => i), {}, { a: 1, b: { c: [null, "d"] } },
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    new Date(0), new Date(1700000000000), new Date(1700000000123), new Date(-1), new Date(2 ** 34 * 1000 + 5),
  ];
  for (const value of values) assert.deepEqual(decode(encode(value)), value, `value ${String(value).slice(0, 20)}`);
  const messages = [
    { type: 1, invocationId: "1", target: "Sum", arguments: [], streamIds: ["2", "3"] },
    { type: 1, target: "send", arguments: values },
    { type: 2, invocationId: "2", item: { when: new Date(1234), bytes: Uint8Array.of(9) } },
    { type: 3, invocationId: "3", result: null },
    { type: 3, invocationId: "3", result: [1, "two"] },
    { type: 3, invocationId: "3", error: "boom" },
    { type: 3, invocationId: "3" },
    { type: 4, headers: { a: "b" }, invocationId: "4", target: "Counter", arguments: [10, 5] },
    { type: 5, invocationId: "4" },
    { type: 6 },
    { type: 7 },
    { type: 7, error: "bye", allowReconnect: false },
    { type: 8, sequenceId: 1394 },
    { type: 9, sequenceId: 2 ** 31 },
  ];
  for (const message of messages) assert.deepEqual(protocol.parse(protocol.write(message)), [message], JSON.stringify(message).slice(0, 60));
});

test("timestamps use the shortest of the three forms and come back as Date", () => {
  assert.deepEqual(encode(new Date(1000)), Uint8Array.of(0xd6, 0xff, 0, 0, 0, 1));
  assert.equal(encode(new Date(1001)).length, 10, "milliseconds: the 64-bit form");
  assert.equal(encode(new Date(-1000)).length, 15, "before 1970: the 96-bit form");
  assert.deepEqual(decode(Uint8Array.of(0xd6, 0xff, 0, 0, 0, 2)), new Date(2000));
  assert.deepEqual(decode(Uint8Array.of(0xd4, 0x01, 0x07)), { type: 1, data: Uint8Array.of(7) }, "another ext type is kept as is");
});

test("bad input is a clear error", () => {
  assert.throws(() => protocol.parse(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), /length prefix/);
  assert.throws(() => protocol.parse(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x08)), /length prefix/);
  assert.throws(() => protocol.parse(Uint8Array.of(0x02, 0xc1, 0x00)), /unknown type byte 0xc1/);
  assert.throws(() => protocol.parse(Uint8Array.of(0x03, 0x91, 0x06, 0x06)), /trailing bytes/, "a prefix longer than the message");
  assert.throws(() => protocol.parse(Uint8Array.of(0x02, 0x92, 0x06)), /truncated/, "a prefix shorter than the message");
  assert.throws(() => protocol.parse(Uint8Array.of(0x02, 0xa1, 0x78)), /not an array/);
  assert.throws(() => protocol.parse(framed(encode([1, {}, null, 42, []]))), /invocation/);
  assert.throws(() => protocol.parse(framed(encode([3, {}, "1", 9]))), /result kind 9/);
  assert.deepEqual(protocol.parse(framed(encode([99, "future"]))), [{ type: 99 }], "an unknown type is passed on for the client to ignore");
});
