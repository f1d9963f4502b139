// Fakes for the client's environment: a manual clock, and a small in-memory gateway server that
// speaks the wire protocol of docs/PROTOCOL.md over fake WebSocket, EventSource, fetch and iframes, with
// either hub protocol (JSON, or MessagePack in binary frames and bodies where the transport carries Binary).
import { JsonHubProtocol, MessagePackHubProtocol, concat, handshakeResponse, records } from "./all.js";

const RS = "\x1e";
const bytes = (data) => (typeof data == "string" ? new TextEncoder().encode(data) : data);
/** Appends `data` to `buffer`: text stays text, anything with bytes becomes bytes. */
const append = (buffer, data) => (typeof buffer == "string" && typeof data == "string" ? buffer + data : concat([bytes(buffer), bytes(data)]));

/** Lets every pending promise callback and queued fake network event run. */
export async function flush(rounds = 20) {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A manual clock: timers run only when `advance(ms)` passes their time. */
export class FakeClock {
  constructor() {
    this.time = 0;
    this.timers = new Map();
    this.nextId = 1;
    this.errors = []; // what timers threw, as a browser would report them
  }

  setTimeout = (fn, ms = 0) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  now = () => this.time;

  /** Runs the timers due within `ms`, in time order, settling promises after each. */
  async advance(ms) {
    const end = this.time + ms;
    await flush();
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
      if (!due.length) break;
      const [id, timer] = due[0];
      this.timers.delete(id);
      this.time = timer.at;
      try {
        timer.fn();
      } catch (error) {
        this.errors.push(error);
      }
      await flush();
    }
    this.time = end;
  }
}

const later = (fn) => Promise.resolve().then(fn);
const split = (data, mode) => {
  if (mode !== "bytes") return [data];
  return typeof data == "string" ? [...data] : Array.from(data, (_, i) => data.slice(i, i + 1));
};

/** The server side of one connection: stateful-reconnect bookkeeping and the test hub. */
class ServerConnection {
  constructor(server, id, token) {
    this.server = server;
    this.id = id;
    this.token = token;
    this.handshaken = false;
    this.sent = 0;
    this.unacked = [];
    this.next = 1;
    this.latest = 0;
    this.stream = null;
    this.received = []; // trackable messages processed, in order
    this.records = []; // every client record, raw (JSON) or decoded (MessagePack), in order
    this.polled = false;
    this.protocol = new JsonHubProtocol();
    this.state = {};
    this.uploads = new Map(); // client-to-server stream id -> {invocationId, items}
  }

  /** Sends a message to the client (numbered and kept until acked when trackable). */
  write(message) {
    const record = this.protocol.write(message);
    if (message.type >= 1 && message.type <= 5) this.unacked.push([++this.sent, record]);
    this.stream?.write(record);
  }

  invoke(target, ...args) {
    this.write({ type: 1, target, arguments: args });
  }

  /** The client closed `stream`: forget it unless a newer one replaced it. */
  detach(stream) {
    if (this.stream === stream) this.stream = null;
  }

  ack() {
    this.write({ type: 8, sequenceId: this.latest });
  }

  /** A new stream: a resume writes Sequence and the unacked messages; else it waits for the handshake. */
  attach(stream, resume) {
    this.stream?.close();
    this.stream = stream;
    if (!resume) return;
    const first = this.unacked.length ? this.unacked[0][0] : this.sent + 1;
    stream.write([this.protocol.write({ type: 9, sequenceId: first }), ...this.unacked.map((e) => e[1])].reduce(append));
  }

  /** Client data arriving by WebSocket frame or POST body: the JSON handshake, then hub messages. */
  receive(data) {
    if (this.server.lossy) return;
    if (typeof data != "string") data = new Uint8Array(data);
    if (!this.handshaken) {
      const split = handshakeResponse(data, this.state);
      if (!split) return;
      this.handshaken = true;
      this.records.push(JSON.stringify(split[0]));
      if (split[0].protocol === "messagepack") this.protocol = new MessagePackHubProtocol();
      this.stream?.write(JSON.stringify(this.server.handshakeReply) + RS);
      data = split[1];
    }
    if (this.protocol.transferFormat === "Binary") {
      for (const message of this.protocol.parse(data, this.state)) this.records.push(message), this._record(message);
      return;
    }
    for (const record of records(data, this.state)) {
      this.records.push(record);
      this._record(JSON.parse(record));
    }
  }

  _record(message) {
    if (message.type === 8) while (this.unacked.length && this.unacked[0][0] <= message.sequenceId) this.unacked.shift();
    if (message.type === 9) this.next = message.sequenceId;
    if (!(message.type >= 1 && message.type <= 5)) return;
    const id = this.next++;
    if (id <= this.latest) return;
    this.latest = id;
    this.received.push(message);
    if (message.type === 1) this._hub(message);
    if (message.type === 4) this._stream(message);
    if (message.type === 2 || message.type === 3) this._upload(message);
  }

  // A method the test defined (FakeServer.methods): its value is the result, what it throws the error.
  _method(method, args, invocationId) {
    let reply;
    try {
      reply = { result: method(args, this) };
    } catch (error) {
      reply = { error: error.message };
    }
    if (invocationId && reply.result !== NO_REPLY) this.write({ type: 3, invocationId, ...reply });
  }

  // Counter(count): items 0 .. count-1, then the end; other streams are driven by the test.
  _stream({ target, arguments: args, invocationId }) {
    if (target !== "Counter") return;
    for (let i = 0; i < args[0]; i++) this.write({ type: 2, invocationId, item: i });
    this.write({ type: 3, invocationId });
  }

  // A client-to-server stream's item or end; Sum answers the sum of its stream's items.
  _upload({ type, invocationId: streamId, item, error }) {
    const upload = this.uploads.get(streamId);
    if (!upload) return;
    if (type === 2) return upload.items.push(item);
    this.uploads.delete(streamId);
    const invocationId = upload.invocationId;
    if (upload.target !== "Sum" || !invocationId) return;
    if (error) this.write({ type: 3, invocationId, error: `stream failed: ${error}` });
    else this.write({ type: 3, invocationId, result: upload.items.reduce((a, b) => a + b, 0) });
  }

  _hub({ target, arguments: args, invocationId, streamIds = [] }) {
    for (const id of streamIds) this.uploads.set(id, { invocationId, target, items: [] });
    if (streamIds.length) return;
    const method = this.server.methods[target];
    if (method) return this._method(method, args, invocationId);
    const result = target === "Fail" ? undefined : args[0];
    if (target === "EchoPush") this.invoke("echo", args[0]);
    if (!invocationId) return;
    if (target === "Fail") this.write({ type: 3, invocationId, error: "boom" });
    else this.write({ type: 3, invocationId, result });
  }
}

/** What a test's method returns to have its call never answered (a Completion lost on the way). */
export const NO_REPLY = Symbol("no reply");

const ALL = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"];
const TEXT_ONLY = ["ServerSentEvents", "ForeverFrame"];

/**
 * The fake gateway at `https://app.test/hubs/echo`, served to a page on `https://app.test`.
 * `mode[transport]`: "ok"; "refuse" (the stream never opens); "silent" (opens, delivers nothing,
 * like a buffering proxy). `chunking`: "whole" or "bytes" (every write arrives one char at a time).
 */
export class FakeServer {
  constructor({ transports = ALL, stateful = true, version = 1 } = {}) {
    this.base = "https://app.test/hubs/echo";
    this.origin = "https://app.test";
    this.transports = transports;
    this.stateful = stateful;
    this.version = version;
    this.mode = Object.fromEntries(ALL.map((t) => [t, "ok"]));
    this.chunking = "whole";
    this.lossy = false;
    this.handshakeReply = {};
    this.methods = {}; // hub methods a test adds: name -> (args, connection) => result (throw: an error completion)
    this.negotiateStatus = 200;
    this.connections = new Map();
    this.log = [];
    this.count = 0;
  }

  /** The connection negotiated last. */
  get last() {
    return [...this.connections.values()].pop();
  }

  /** Drops the live stream of `conn` as a network failure would. */
  drop(conn = this.last) {
    const stream = conn.stream;
    conn.stream = null;
    stream?.fail();
  }

  /** Forgets a connection: its token now answers 404. */
  forget(conn = this.last) {
    this.drop(conn);
    this.connections.delete(conn.token);
  }

  env(clock, extra = {}) {
    const server = this;
    const window = new FakeWindow();
    const document = new FakeDocument(this);
    return {
      WebSocket: class extends FakeWebSocket {
        constructor(url) {
          super(server, url);
        }
      },
      EventSource: class extends FakeEventSource {
        constructor(url, init) {
          super(server, url, init);
        }
      },
      fetch: (url, init) => this._fetch(url, init),
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      document,
      window: (document.window = window),
      location: { href: "https://app.test/page", origin: this.origin },
      ...extra,
    };
  }

  _lookup(url) {
    const u = new URL(url);
    return { u, conn: this.connections.get(u.searchParams.get("id")) };
  }

  // A stream that writes through `deliver(text)`, fails through `fail()`.
  _stream(transport, deliver, fail) {
    const silent = this.mode[transport] === "silent";
    return {
      write: (text) => silent || split(text, this.chunking).forEach((part) => later(() => deliver(part))),
      fail: () => later(fail),
      close: () => later(fail),
    };
  }

  async _fetch(url, init = {}) {
    const method = init.method || "GET";
    this.log.push(`${method} ${url}`);
    await null;
    const { u, conn } = this._lookup(url);
    if (u.pathname.endsWith("/negotiate")) return this._negotiate(u, init.signal);
    if (!conn) return response(404, '{"error":"unknown token"}');
    if (method === "DELETE") {
      this.forget(conn);
      return response(202, "");
    }
    if (method === "POST") {
      conn.receive(init.body instanceof Blob ? await init.body.arrayBuffer() : init.body);
      return response(200, "");
    }
    return this._poll(u, conn, init.signal);
  }

  _negotiate(u, signal) {
    // "held": the browser queues the request behind other streams to the host (its per-host limit).
    if (this.negotiateStatus === "held") return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
    if (this.negotiateStatus !== 200) return response(this.negotiateStatus, "");
    const n = ++this.count;
    const conn = new ServerConnection(this, `cid${n}`, `tok${n}`);
    this.connections.set(conn.token, conn);
    const body = {
      connectionId: conn.id,
      negotiateVersion: this.version,
      availableTransports: this.transports
        .filter((transport) => transport !== "ForeverFrame" || u.searchParams.get("foreverFrame") === "true")
        .map((transport) => ({ transport, transferFormats: TEXT_ONLY.includes(transport) ? ["Text"] : ["Text", "Binary"] })),
    };
    if (this.version) body.connectionToken = conn.token;
    else this.connections.set(conn.id, conn);
    if (this.stateful && u.searchParams.get("useStatefulReconnect") === "true") body.useStatefulReconnect = true;
    return response(200, JSON.stringify(body));
  }

  // Long polling: the first poll answers at once; a resume poll gets the replay; others are held.
  _poll(u, conn, signal) {
    const resume = u.searchParams.get("resume") === "1";
    if (this.mode.LongPolling === "refuse") return Promise.reject(new TypeError("Failed to fetch"));
    if (!resume && !conn.polled) {
      conn.polled = true;
      conn.attach(this._pollStream(conn), false);
      return response(200, "");
    }
    if (resume) conn.attach(this._pollStream(conn), true);
    const stream = conn.stream;
    if (!stream?.poll) return response(204, "");
    return stream.poll(signal);
  }

  _pollStream(conn) {
    let buffer = "";
    let waiter = null;
    const silent = this.mode.LongPolling === "silent";
    // With chunking "bytes", each poll carries one character and the next poll the following one.
    const answer = () => {
      if (!waiter || !buffer || silent) return;
      const w = waiter;
      waiter = null;
      const size = this.chunking === "bytes" ? 1 : buffer.length;
      w.resolve(response(200, buffer.slice(0, size)));
      if (buffer.length === size) buffer = "";
      buffer = buffer.slice(size);
    };
    return {
      write: (text) => {
        buffer = buffer.length ? append(buffer, text) : text;
        later(answer);
      },
      fail: () => waiter?.reject(new TypeError("network error")),
      close: () => {
        const w = waiter;
        waiter = null;
        w?.resolve(response(204, ""));
      },
      poll: (signal) =>
        new Promise((resolve, reject) => {
          waiter?.resolve(response(204, ""));
          waiter = { resolve, reject };
          signal?.addEventListener("abort", () => reject(new Error("aborted")));
          later(answer);
        }),
    };
  }
}

function response(status, body) {
  return Promise.resolve({
    status,
    ok: status >= 200 && status < 300,
    text: async () => (typeof body == "string" ? body : new TextDecoder().decode(body)),
    arrayBuffer: async () => bytes(body).slice().buffer,
    json: async () => JSON.parse(body),
  });
}

class FakeWebSocket {
  constructor(server, url) {
    this.url = url;
    this.sent = [];
    server.log.push(`WS ${url}`);
    const { conn } = server._lookup(url.replace(/^ws/, "http"));
    if (!conn || server.mode.WebSockets === "refuse") {
      later(() => this.onclose?.({ code: 1006, reason: "" }));
      return;
    }
    this.conn = conn;
    later(() => {
      this.readyState = 1;
      this.onopen?.();
      const stream = (this.stream = server._stream(
        "WebSockets",
        (data) => this.readyState === 1 && this.onmessage?.({ data: typeof data == "string" ? data : data.slice().buffer }),
        () => this._closeBy(1006)
      ));
      conn.attach(stream, conn.handshaken);
    });
  }

  send(data) {
    if (this.readyState !== 1) throw new Error("InvalidStateError");
    this.sent.push(data);
    const conn = this.conn;
    later(() => conn.receive(data));
  }

  close() {
    this.readyState = 3;
    this.conn?.detach(this.stream);
  }

  _closeBy(code) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

class FakeEventSource {
  constructor(server, url, init) {
    this.url = url;
    this.init = init;
    server.log.push(`SSE ${url}`);
    const { conn } = server._lookup(url);
    if (!conn || server.mode.ServerSentEvents === "refuse") {
      later(() => this.onerror?.());
      return;
    }
    this.conn = conn;
    later(() => {
      this.onopen?.();
      const stream = (this.stream = server._stream(
        "ServerSentEvents",
        (data) => !this.closed && this.onmessage?.({ data }),
        () => !this.closed && this.onerror?.()
      ));
      conn.attach(stream, conn.handshaken);
    });
  }

  close() {
    this.closed = true;
    this.conn?.detach(this.stream);
  }
}

/** window: dispatches "message" events to its listeners. */
export class FakeWindow {
  constructor() {
    this.listeners = [];
  }

  addEventListener(type, fn) {
    this.listeners.push([type, fn]);
  }

  removeEventListener(type, fn) {
    this.listeners = this.listeners.filter(([t, f]) => t !== type || f !== fn);
  }

  postMessage() {}

  dispatch(type, event) {
    for (const [t, fn] of this.listeners.slice()) if (t === type) fn(event);
  }
}

class FakeDocument extends FakeWindow {
  constructor(server) {
    super();
    this.server = server;
    this.readyState = "complete";
    this.body = {
      children: [],
      appendChild: (frame) => {
        this.body.children.push(frame);
        frame.parent = this.body;
        this._load(frame);
      },
    };
  }

  createElement(tag) {
    return {
      tagName: tag.toUpperCase(),
      contentWindow: {},
      remove() {
        this.parent.children = this.parent.children.filter((c) => c !== this);
        this.conn?.detach(this.stream);
      },
    };
  }

  // The frame document: each write is a postMessage from the frame's window; g(null) ends it.
  _load(frame) {
    const server = this.server;
    server.log.push(`FRAME ${frame.src}`);
    const { u, conn } = server._lookup(frame.src);
    if (!conn || server.mode.ForeverFrame === "refuse") return; // a failed load fires nothing
    const post = (d) => this.window.dispatch("message", { source: frame.contentWindow, origin: server.origin, data: { gw: u.searchParams.get("frame"), d } });
    const stream = server._stream("ForeverFrame", post, () => post(null));
    Object.assign(frame, { conn, stream });
    later(() => conn.attach(stream, conn.handshaken));
  }
}
