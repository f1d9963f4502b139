import { test } from "node:test";
import assert from "node:assert/strict";
import { JsonHubProtocol, parse, write, isTrackable, handshake, handshakeResponse, join, MessageType, RS } from "../src/protocol.js";

import { RecordSplitter } from "../testing/splitter.js";

const STREAM = '{}\x1e{"type":1,"target":"echo","arguments":["a\\u001eb"]}\x1e{"type":6}\x1e';
const RECORDS = ["{}", '{"type":1,"target":"echo","arguments":["a\\u001eb"]}', '{"type":6}'];

test("the splitter returns every record of a whole buffer", () => {
  assert.deepEqual(new RecordSplitter().push(STREAM), RECORDS);
});

test("the splitter handles input one character at a time", () => {
  const splitter = new RecordSplitter();
  const out = [];
  for (const c of STREAM) out.push(...splitter.push(c));
  assert.deepEqual(out, RECORDS);
});

test("the splitter keeps trailing data until its separator arrives", () => {
  const splitter = new RecordSplitter();
  assert.deepEqual(splitter.push(STREAM + '{"type":'), RECORDS);
  assert.deepEqual(splitter.push("7}"), []);
  assert.deepEqual(splitter.push(RS + '{"ty'), ['{"type":7}']);
  assert.equal(splitter.rest, '{"ty');
});

test("the splitter ignores empty records", () => {
  assert.deepEqual(new RecordSplitter().push("\x1e\x1e{}\x1e"), ["{}"]);
});

test("write terminates records and the constants are the spec's", () => {
  assert.equal(write({ type: 8, sequenceId: 3 }), '{"type":8,"sequenceId":3}\x1e');
  assert.equal(handshake(new JsonHubProtocol()), '{"protocol":"json","version":1}\x1e');
  assert.equal(new JsonHubProtocol().write({ type: 6 }), '{"type":6}\x1e');
  assert.equal(handshake({ name: "messagepack", version: 1 }), '{"protocol":"messagepack","version":1}\x1e');
});

test("parse rejects what is not a JSON object, naming the record", () => {
  assert.deepEqual(parse('{"type":6}'), { type: 6 });
  assert.throws(() => parse("{nope"), /invalid record: \{nope/);
  assert.throws(() => parse("42"), /invalid record/);
  assert.throws(() => parse("null"), /invalid record/);
});

test("only Invocation, StreamItem, Completion, StreamInvocation and CancelInvocation are trackable", () => {
  const trackable = Object.entries(MessageType).filter(([, type]) => isTrackable({ type })).map(([name]) => name);
  assert.deepEqual(trackable, ["Invocation", "StreamItem", "Completion", "StreamInvocation", "CancelInvocation"]);
  assert.equal(isTrackable({}), false);
});

test("the handshake response splits off text (whole or piece by piece) or bytes (a whole frame)", () => {
  const text = '{}\x1e{"type":6}\x1e';
  assert.deepEqual(handshakeResponse(text, {}), [{}, '{"type":6}\x1e']);
  const state = {};
  const results = [...text].map((piece) => handshakeResponse(piece, state));
  assert.deepEqual(results.slice(0, 3), [null, null, [{}, ""]]);
  const frame = Uint8Array.of(0x7b, 0x7d, 0x1e, 0x02, 0x91, 0x06);
  assert.deepEqual(handshakeResponse(frame, {}), [{}, Uint8Array.of(0x02, 0x91, 0x06)]);
  assert.deepEqual(handshakeResponse(frame.buffer, {}), [{}, Uint8Array.of(0x02, 0x91, 0x06)], "an ArrayBuffer as a WebSocket gives it");
  assert.throws(() => handshakeResponse(Uint8Array.of(0x7b, 0x1e), {}), /invalid record/);
});

test("join makes one body of strings or of byte arrays", async () => {
  assert.equal(join(["a", "b"]), "ab");
  const blob = join([Uint8Array.of(1), Uint8Array.of(), Uint8Array.of(2, 3)]);
  assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), Uint8Array.of(1, 2, 3));
});
