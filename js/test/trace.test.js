// The trace entry: invocations written through `traced` carry the page's trace headers, other messages do not,
// and a replayed invocation carries the headers it was first sent with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { traced } from "../src/trace.js";
import { JsonHubProtocol } from "../src/protocol.js";
import { MessagePackHubProtocol } from "../src/msgpack.js";

const json = JsonHubProtocol();
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

test("invocations and stream invocations carry the headers; other messages are written unchanged", () => {
  const protocol = traced(() => ({ traceparent: TRACEPARENT }));
  assert.equal(protocol.name, "json");
  assert.equal(protocol.transferFormat, "Text");
  for (const type of [1, 4]) {
    const [message] = json.parse(protocol.write({ type, invocationId: "1", target: "Echo", arguments: [1] }));
    assert.deepEqual(message.headers, { traceparent: TRACEPARENT });
  }
  const ping = { type: 6 };
  assert.equal(protocol.write(ping), json.write(ping));
});

test("a replay writes the headers of the first write; no headers when there is no trace context", () => {
  let n = 0;
  const protocol = traced(() => (n++ ? { traceparent: "other" } : { traceparent: TRACEPARENT }));
  const message = { type: 1, invocationId: "1", target: "Echo", arguments: [] };
  assert.equal(protocol.write(message), protocol.write(message));
  const bare = traced(() => null).write({ type: 1, target: "Echo", arguments: [] });
  assert.equal(json.parse(bare)[0].headers, undefined);
});

test("it wraps MessagePack too", () => {
  const msgpack = new MessagePackHubProtocol();
  const protocol = traced(() => ({ traceparent: TRACEPARENT }), msgpack);
  assert.equal(protocol.transferFormat, "Binary");
  const [message] = msgpack.parse(protocol.write({ type: 1, invocationId: "1", target: "Echo", arguments: [] }));
  assert.deepEqual(message.headers, { traceparent: TRACEPARENT });
});
