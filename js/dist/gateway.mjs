// src/errors.js
function failure(message, status) {
  const error = new Error(message);
  if (status) error.status = status;
  return error;
}

// src/transports/base.js
var noop = () => {
};
var Transport = class {
  constructor(env, options) {
    this.env = env;
    this.options = options;
    this.onreceive = noop;
    this.onclose = noop;
    this.stopped = false;
    this.binary = options.protocol?.transferFormat == "Binary";
  }
  send(data) {
    this._poster.send(data);
  }
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this._poster?.stop();
    this._end();
  }
  _closed(error) {
    if (this.stopped) return;
    this.stop();
    this.onclose(error);
  }
};
Transport.pooled = true;
Transport.resumeQuery = "";

// src/transports/websockets.js
var WebSockets = class extends Transport {
  static supported(env) {
    return Boolean(env.WebSocket);
  }
  connect(url) {
    return new Promise((resolve, reject) => {
      const socket = this._socket = new this.env.WebSocket(url.replace(/^http/, "ws"));
      socket.binaryType = "arraybuffer";
      let open = false;
      socket.onopen = () => {
        open = true;
        resolve();
      };
      socket.onmessage = (event) => (this.binary || typeof event.data == "string") && this.onreceive(event.data);
      socket.onclose = (event) => {
        const error = failure(`${event.code}${event.reason ? " " + event.reason : ""}`);
        open ? this._closed(error) : (this.stop(), reject(error));
      };
    });
  }
  send(data) {
    this._socket.send(data);
  }
  _end() {
    const socket = this._socket;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.close();
  }
};
WebSockets.transportName = "WebSockets";
WebSockets.pooled = false;

// src/http.js
var fetchInit = (options, method, body) => ({
  method,
  body,
  cache: "no-store",
  credentials: options.withCredentials ? "include" : "same-origin"
});

// src/protocol.js
var RS = "";
var INVOCATION = 1;
var STREAM_ITEM = 2;
var COMPLETION = 3;
var STREAM_INVOCATION = 4;
var CANCEL_INVOCATION = 5;
var PING = 6;
var CLOSE = 7;
var ACK = 8;
var SEQUENCE = 9;
var MessageType = {
  Invocation: INVOCATION,
  StreamItem: STREAM_ITEM,
  Completion: COMPLETION,
  StreamInvocation: STREAM_INVOCATION,
  CancelInvocation: CANCEL_INVOCATION,
  Ping: PING,
  Close: CLOSE,
  Ack: ACK,
  Sequence: SEQUENCE
};
var write = (message) => JSON.stringify(message) + RS;
var handshake = ({ name, version }) => write({ protocol: name, version });
var isTrackable = (message) => message.type >= 1 && message.type <= 5;
var join = (parts) => typeof parts[0] == "string" ? parts.join("") : new Blob(parts);
function parse(record) {
  let message;
  try {
    message = JSON.parse(record);
  } catch (e) {
    message = null;
  }
  if (!message || typeof message !== "object" || Array.isArray(message)) throw new Error(`invalid record: ${record.slice(0, 80)}`);
  return message;
}
function records(text, state) {
  const parts = ((state.rest || "") + text).split(RS);
  state.rest = parts.pop();
  return parts.filter(Boolean);
}
var json = { name: "json", version: 1, transferFormat: "Text", write, parse: (text, state = {}) => records(text, state).map(parse) };
function JsonHubProtocol() {
  return json;
}
function handshakeResponse(data, state) {
  const text = typeof data == "string";
  data = text ? (state.rest || "") + data : new Uint8Array(data);
  const end = data.indexOf(text ? RS : 30);
  state.rest = end < 0 && text ? data : "";
  const head = data.slice(0, end);
  return end < 0 ? null : [parse(text ? head : new TextDecoder().decode(head)), data.slice(end + 1)];
}

// src/transports/poster.js
var RETRY_MS = 100;
var TRIES = 10;
var TRANSIENT = [409, 503];
var Poster = class {
  constructor(env, options, url, onerror, watch) {
    this.env = env;
    this.options = options;
    this._url = url;
    this._onerror = onerror;
    this._watch = watch;
    this._queue = [];
    this._busy = false;
    this.stopped = false;
  }
  send(data) {
    this._queue.push(data);
    if (!this._busy) this._flush();
  }
  stop() {
    this.stopped = true;
    this._queue = [];
  }
  async _flush() {
    this._busy = true;
    let body = "";
    let tries = 0;
    while (!this.stopped && (body || this._queue.length)) {
      body = body || join(this._queue.splice(0));
      const status = await this._post(body);
      if (TRANSIENT.includes(status) && ++tries < TRIES) {
        await new Promise((resolve) => this.env.setTimeout(resolve, RETRY_MS * tries));
      } else if (status) {
        return this._fail(status);
      } else {
        body = "";
        tries = 0;
      }
    }
    this._busy = false;
  }
  /** Resolves 0 on success, else the HTTP status, or -1 for a network error. */
  async _post(body) {
    try {
      const response = await this.env.fetch(this._url, fetchInit(this.options, "POST", body));
      if (this._watch && response.headers?.get("x-gateway-stream") == "none") this._onerror(failure("no stream at the server"));
      return response.ok ? 0 : response.status;
    } catch (e) {
      return -1;
    }
  }
  _fail(status) {
    this._busy = false;
    if (this.stopped) return;
    this.stop();
    this._onerror(status < 0 ? failure("POST failed: network error") : failure(`POST failed: HTTP ${status}`, status));
  }
};

// src/transports/sse.js
var ServerSentEvents = class extends Transport {
  static supported(env) {
    return Boolean(env.EventSource && env.fetch);
  }
  connect(url) {
    this._poster = new Poster(this.env, this.options, url, (error) => this._closed(error), true);
    return new Promise((resolve, reject) => {
      const source = this._source = new this.env.EventSource(url, { withCredentials: Boolean(this.options.withCredentials) });
      let open = false;
      source.onopen = () => {
        open = true;
        resolve();
      };
      source.onmessage = (event) => this.onreceive(event.data);
      source.onerror = () => {
        const error = failure("EventSource error");
        open ? this._closed(error) : (this.stop(), reject(error));
      };
    });
  }
  _end() {
    const source = this._source;
    if (!source) return;
    source.onopen = source.onmessage = source.onerror = null;
    source.close();
  }
};
ServerSentEvents.transportName = "ServerSentEvents";

// src/transports/foreverframe.js
var frameId = () => "f" + Math.random().toString(36).slice(2, 12);
var ForeverFrame = class extends Transport {
  static supported(env) {
    return Boolean(env.document && env.window?.postMessage && env.location && env.fetch);
  }
  async connect(url) {
    const { document, window, location } = this.env;
    this._poster = new Poster(this.env, this.options, url, (error) => this._closed(error), true);
    this._origin = new URL(url).origin;
    this._id = frameId();
    this._listener = (event) => this._message(event);
    window.addEventListener("message", this._listener);
    await loaded(document, window);
    if (this.stopped) return;
    const frame = this._frame = document.createElement("iframe");
    frame.hidden = true;
    frame.src = `${url}&transport=ForeverFrame&origin=${encodeURIComponent(location.origin)}&frame=${this._id}`;
    document.body.appendChild(frame);
  }
  _message(event) {
    const data = event.data;
    const ours = this._frame && event.source === this._frame.contentWindow && event.origin === this._origin;
    if (!ours || !data || data.gw !== this._id) return;
    if (data.d === null) this._closed(failure("end of stream"));
    else if (typeof data.d === "string") this.onreceive(data.d);
  }
  _end() {
    this.env.window.removeEventListener("message", this._listener);
    const frame = this._frame;
    this._frame = null;
    if (frame) {
      frame.src = "about:blank";
      frame.remove();
    }
  }
};
ForeverFrame.transportName = "ForeverFrame";
function loaded(document, window) {
  if (document.readyState === "complete") return Promise.resolve();
  return new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
}

// src/transports/longpolling.js
var RESUME = "&resume=1";
var LongPolling = class extends Transport {
  static supported(env) {
    return Boolean(env.fetch);
  }
  /** The first poll answers at once (200 empty, or the replay on a resume); then the loop starts. */
  async connect(url) {
    this._url = url.replace(RESUME, "");
    this._poster = new Poster(this.env, this.options, this._url, (error) => this._closed(error));
    const body = await this._poll(url);
    if (body === null) throw failure("HTTP 204");
    Promise.resolve().then(() => this._loop(body));
  }
  async _loop(body) {
    while (!this.stopped) {
      this.onreceive(body);
      try {
        body = await this._poll(this._url);
      } catch (error) {
        return this._closed(error);
      }
      if (body === null) return this._closed(failure("HTTP 204"));
    }
  }
  /** Resolves the body of a 200, or null for a 204; rejects with the status or network failure. */
  async _poll(url) {
    this._abort = new AbortController();
    let response, body;
    try {
      response = await this.env.fetch(url, { ...fetchInit(this.options, "GET"), signal: this._abort.signal });
      body = await (this.binary ? response.arrayBuffer() : response.text());
    } catch (e) {
      throw failure("poll failed: network error");
    }
    if (response.status === 204) return null;
    if (response.status !== 200) throw failure(`HTTP ${response.status}`, response.status);
    return body;
  }
  _end() {
    this._abort?.abort();
  }
};
LongPolling.transportName = "LongPolling";
LongPolling.resumeQuery = RESUME;

// src/transports/index.js
var TRANSPORTS = [WebSockets, ServerSentEvents, ForeverFrame, LongPolling];
function plan(available, requested, env, format) {
  const offered = new Map(available.map((entry) => [entry.transport, entry]));
  return (requested || available.map((entry) => entry.transport)).map((name) => {
    const T = TRANSPORTS.find((candidate) => candidate.transportName === name);
    const offer = offered.get(name);
    let skip = "";
    if (!offer) skip = "not offered by the server";
    else if (!T) skip = "unknown to this client";
    else if (!(offer.transferFormats || ["Text"]).includes(format)) skip = `no ${format} transfer format`;
    else if (!T.supported(env)) skip = "not supported here";
    return { name, T, skip };
  });
}

// src/connection.js
var noop2 = () => {
};
var LIMIT = "; per-host limit? try {shared: true}";
var NEGOTIATE = "negotiate";
var withQuery = (url, query) => url + (url.includes("?") ? "&" : "?") + query;
function negotiateUrl(url) {
  const u = new URL(url);
  u.pathname = u.pathname.replace(/\/?$/, "/negotiate");
  return withQuery(u.href, "negotiateVersion=1&useStatefulReconnect=true&foreverFrame=true");
}
var Connection = class {
  /**
   * @param {string} url the hub's base URL, absolute or relative to `env.location`
   * @param {object} options `env`, `transports`, `withCredentials`, `startTimeout`,
   *   `keepAliveInterval`, `serverTimeout` (all filled in by HubConnection)
   */
  constructor(url, options) {
    this.options = options;
    this.env = options.env;
    this.url = new URL(url, this.env.location?.href).href;
    this.onattempt = this.onmessage = this.ondrop = noop2;
    this.attempts = [];
    this._plan = [];
    this._index = 0;
    this._epoch = 0;
    this._queue = [];
    this._live = false;
    this.transport = this.token = this.connectionId = null;
    this.stateful = false;
    this._ping = options.protocol.write({ type: PING });
  }
  /** Negotiates and connects over the first transport that confirms the handshake. */
  async start() {
    const { options } = this;
    const epoch = this._begin();
    this._delete();
    if (!await this._renegotiate(NEGOTIATE, epoch)) throw this._error("connect");
    this._plan = plan(this._offer || [], options.transports, this.env, options.protocol.transferFormat);
    let used = false;
    for (let i = 0; i < this._plan.length; i++) {
      const { name, T, skip } = this._plan[i];
      if (skip) {
        this._record(name, "skipped", skip, null, false);
        continue;
      }
      if (used && !await this._renegotiate(name, epoch)) continue;
      used = true;
      const error = await this._try(i, T, false, epoch);
      if (!error) return;
      this._delete();
      if (error.hard) break;
    }
    this._delete();
    throw this._error("connect");
  }
  // A fresh token for the next attempt; a failure counts as that transport's attempt.
  async _renegotiate(name, epoch) {
    try {
      this._use(await this._negotiate(epoch));
      return true;
    } catch (error) {
      this._check(epoch);
      this._record(name, "failed", `${name == NEGOTIATE ? "" : "negotiate failed: "}${error.message}`, null, false);
      return false;
    }
  }
  /** Resumes the current token, trying the transport in use first, then the ones after it. */
  async resume() {
    const epoch = this._begin();
    for (let i = this._index; i < this._plan.length; i++) {
      const { name, T, skip } = this._plan[i];
      if (skip) {
        this._record(name, "skipped", skip, null, true);
        continue;
      }
      const error = await this._try(i, T, true, epoch);
      if (!error) return;
      const status = error.status || await this._probe();
      this._check(epoch);
      if (status === 404) throw Object.assign(this._error("resume"), { gone: true });
    }
    throw this._error("resume");
  }
  /** Writes records on the live transport (dropped silently while there is none). */
  send(records2) {
    if (!this.transport) return;
    this.transport.send(records2);
    this._sentAt = this.env.now();
    this._pingTimer = this._rearm(this._pingTimer, this.options.keepAliveInterval, () => this.send(this._ping));
  }
  /** Starts handing queued and new messages to `onmessage`. */
  deliver() {
    this._live = true;
    while (this._live && this._queue.length) this.onmessage(this._queue.shift());
  }
  /** Abandons any attempt, closes the transport and DELETEs the token. */
  stop() {
    this._begin();
    this._delete();
    this.connectionId = null;
  }
  /** Reports the live transport as dropped (used for a server Close message that allows reconnect). */
  drop(error) {
    if (!this.transport) return;
    this._release();
    this.ondrop(error);
  }
  // A new generation: whatever an older start or resume was doing is abandoned.
  _begin() {
    this._abort?.(failure("stopped"));
    this._release();
    this.attempts = [];
    this._queue = [];
    return ++this._epoch;
  }
  _check(epoch) {
    if (epoch !== this._epoch) throw failure("The connection was stopped.");
  }
  async _negotiate(epoch) {
    const { env, options } = this;
    let response;
    try {
      const signal = AbortSignal.timeout?.(options.startTimeout);
      response = await env.fetch(negotiateUrl(this.url), { ...fetchInit(options, "POST"), signal });
    } catch (e) {
      const cross = new URL(this.url).origin !== env.location?.origin;
      throw failure(e.name == "TimeoutError" ? `no answer within ${options.startTimeout} ms${LIMIT}` : cross ? "network error, or this page's origin is not allowed (CORS)" : "network error");
    }
    this._check(epoch);
    if (!response.ok) throw failure(`HTTP ${response.status}`, response.status);
    const body = await response.json();
    this._check(epoch);
    if (body.error) throw Object.assign(failure(body.error), { hard: true });
    return body;
  }
  _use(negotiation) {
    this._offer = negotiation.availableTransports;
    this.connectionId = negotiation.connectionId;
    this.token = negotiation.connectionToken || negotiation.connectionId;
    this.stateful = Boolean(negotiation.useStatefulReconnect);
  }
  // One attempt, recorded. Resolves null when confirmed, else the error; throws when abandoned.
  async _try(index, T, resume, epoch) {
    const started = this.env.now();
    const name = T.transportName;
    try {
      await this._attempt(T, resume);
    } catch (error) {
      this._check(epoch);
      this._record(name, "failed", error.message, started, resume);
      return error;
    }
    this._index = index;
    this._record(name, "connected", "", started, resume);
    return null;
  }
  _record(transport, outcome, reason, started, resume) {
    const ms = started === null ? 0 : this.env.now() - started;
    const attempt = { transport, outcome, reason, ms, resume };
    this.attempts.push(attempt);
    this.onattempt(attempt);
    return attempt;
  }
  _error(verb) {
    const list = this.attempts.map((a) => `${a.transport} ${a.outcome} (${a.reason})`).join("; ");
    return Object.assign(failure(`Unable to ${verb}: ${list || "no transport to try"}`), {
      attempts: this.attempts.slice()
    });
  }
  // Opens T on the token and waits for the confirming record: the handshake response, or on a
  // resume the server's Sequence message.
  _attempt(T, resume) {
    const { env, options } = this;
    const what = resume ? "Sequence" : "handshake";
    const transport = new T(env, options);
    const state = {};
    let shaken = resume;
    const url = withQuery(this.url, `id=${encodeURIComponent(this.token)}`) + (resume ? T.resumeQuery : "");
    return new Promise((resolve, reject) => {
      let done = false;
      const fail = (error) => {
        if (done) return;
        done = true;
        env.clearTimeout(timer);
        this._abort = null;
        transport.stop();
        reject(error);
      };
      const timer = env.setTimeout(
        () => fail(failure(`no ${what} within ${options.startTimeout} ms${T.pooled ? LIMIT : ""}`)),
        options.startTimeout
      );
      const closed = (error) => fail(failure(`closed before ${what}: ${error.message}`, error.status));
      const confirm = (message) => {
        if (resume && message.type !== SEQUENCE) return;
        if (!resume && message.error) throw Object.assign(failure(`handshake rejected: ${message.error}`), { hard: true });
        if (!resume && message.type) throw failure("message before handshake");
        done = true;
        env.clearTimeout(timer);
        this._abort = null;
        handle = (next) => this._push(next);
        if (resume) this._queue.push(message);
        this._adopt(transport);
        resolve();
      };
      let handle = confirm;
      const read = (data) => {
        if (!shaken) {
          const split = handshakeResponse(data, state);
          if (!split) return;
          shaken = true;
          confirm(split[0]);
          data = split[1];
        }
        for (const message of options.protocol.parse(data, state)) handle(message);
      };
      this._abort = fail;
      transport.onclose = closed;
      transport.onreceive = (data) => {
        if (this.transport === transport) this._heard();
        try {
          read(data);
        } catch (error) {
          this.transport === transport ? this.drop(error) : fail(error);
        }
      };
      transport.connect(url).then(() => resume || done || transport.send(handshake(options.protocol))).catch(closed);
    });
  }
  _push(message) {
    this._queue.push(message);
    if (this._live) this.deliver();
  }
  _adopt(transport) {
    this.transport = transport;
    this.transportName = transport.constructor.transportName;
    transport.onclose = (error) => this.drop(error);
    this._sentAt = this.env.now();
    this._heard();
    this._pingTimer = this._rearm(this._pingTimer, this.options.keepAliveInterval, () => this.send(this._ping));
  }
  // Something came from the server: push the server timeout back.
  // Timers of a background tab are throttled but network events are not: a keep-alive falling due is sent
  // from here too.
  _heard() {
    const ms = this.options.serverTimeout;
    if (this.env.now() - this._sentAt >= this.options.keepAliveInterval) this.send(this._ping);
    this._serverTimer = this._rearm(this._serverTimer, ms, () => this.drop(failure(`server timeout: nothing received for ${ms} ms`)));
  }
  // Clears `handle` and returns a new timer. Timers are fields read and written by name in the code, never
  // through a string: the minified build renames private members, and `this["_pingTimer"]` would then be
  // a different field from the one `_release` clears.
  _rearm(handle, ms, fn) {
    this.env.clearTimeout(handle);
    return this.env.setTimeout(fn, ms);
  }
  _release() {
    this.env.clearTimeout(this._pingTimer);
    this.env.clearTimeout(this._serverTimer);
    this._live = false;
    const transport = this.transport;
    this.transport = null;
    transport?.stop();
  }
  _delete() {
    if (!this.token) return;
    const url = withQuery(this.url, `id=${encodeURIComponent(this.token)}`);
    this.token = null;
    this.env.fetch(url, fetchInit(this.options, "DELETE")).catch(noop2);
  }
  // Asks whether the token still lives, with a harmless Ping POST: resolves its status (0 on failure).
  async _probe() {
    try {
      const url = withQuery(this.url, `id=${encodeURIComponent(this.token)}`);
      return (await this.env.fetch(url, fetchInit(this.options, "POST", this._ping))).status;
    } catch (e) {
      return 0;
    }
  }
};

// src/buffer.js
var MessageBuffer = class {
  constructor(enabled) {
    this.enabled = enabled;
    this.sent = 0;
    this.unacked = [];
    this.next = 1;
    this.latest = 0;
  }
  /** Records an outgoing message. */
  sending(message, record) {
    if (this.enabled && isTrackable(message)) this.unacked.push([++this.sent, record]);
  }
  /** The peer acked every id up to `id`. */
  ack(id) {
    while (this.unacked.length && this.unacked[0][0] <= id) this.unacked.shift();
  }
  /** Returns false for a trackable message already processed. */
  received(message) {
    if (!this.enabled || !isTrackable(message)) return true;
    const id = this.next++;
    if (id <= this.latest) return false;
    this.latest = id;
    return true;
  }
  /** The peer's Sequence: its next message has id `id`. */
  sequence(id) {
    if (id > this.latest + 1) throw failure(`Sequence ${id} skips messages: last received was ${this.latest}`);
    this.next = id;
  }
  /** The records sent on a resume: our Sequence (encoded by `encode`), then every unacked record in order. */
  replay(encode = write) {
    const first = this.unacked.length ? this.unacked[0][0] : this.sent + 1;
    return [encode({ type: SEQUENCE, sequenceId: first }), ...this.unacked.map((entry) => entry[1])];
  }
};

// src/subject.js
var Subject = class {
  /** @param {() => void} [cancel] called when the last subscription is disposed of */
  constructor(cancel) {
    this._observers = [];
    this._cancel = cancel;
  }
  /** Adds `observer` ({next, complete, error}, each optional); `dispose()` removes it. */
  subscribe(observer) {
    this._observers.push(observer);
    return {
      dispose: () => {
        this._observers = this._observers.filter((o) => o !== observer);
        if (!this._observers.length) this._cancel?.();
      }
    };
  }
  next(item) {
    this._each("next", item);
  }
  error(error) {
    this._each("error", error);
  }
  complete() {
    this._each("complete");
  }
  // (dispose makes a new array, so the loop sees the observers there were when it began)
  _each(key, value) {
    for (const observer of this._observers) observer[key]?.(value);
  }
};

// src/hub.js
var STATES = ["Disconnected", "Connecting", "Connected", "Reconnecting", "Disconnecting"];
var HubConnectionState = Object.fromEntries(STATES.map((state) => [state, state]));
var NEXT = ["1", "240", "340", "240", "0"];
var EVENTS = ["close", "reconnecting", "reconnected", "attempt"];
var DEFAULTS = {
  withCredentials: false,
  startTimeout: 5e3,
  keepAliveInterval: 15e3,
  serverTimeout: 3e4,
  reconnectDelays: [0, 2e3, 1e4, 3e4],
  ackDelay: 1e3,
  protocol: json
};
function globalEnv() {
  const g = globalThis;
  const bound = (name) => g[name]?.bind(g);
  return {
    WebSocket: g.WebSocket,
    EventSource: g.EventSource,
    fetch: bound("fetch"),
    setTimeout: bound("setTimeout"),
    clearTimeout: bound("clearTimeout"),
    document: g.document,
    window: g.window,
    location: g.location,
    now: Date.now
  };
}
var RECEIVE = {
  [INVOCATION]: (hub, m) => hub._invocation(m),
  [STREAM_ITEM]: (hub, m) => hub._settle(m.invocationId, "next", m.item),
  [COMPLETION]: (hub, { invocationId, error, result }) => hub._settle(invocationId, error ? "error" : "complete", error ? failure(error) : result),
  [CLOSE]: (hub, m) => hub._closeMessage(m),
  [ACK]: (hub, m) => hub.buffer.ack(m.sequenceId),
  [SEQUENCE]: (hub, m) => hub.buffer.sequence(m.sequenceId)
};
var HubConnection = class {
  /**
   * @param {string} url the hub's base URL, e.g. "/hubs/jobs"
   * @param {object} [options] see gateway.d.ts: transports, withCredentials, startTimeout,
   *   keepAliveInterval, serverTimeout, reconnectDelays, ackDelay, protocol, env
   */
  constructor(url, options = {}) {
    if (options.shared) throw failure("{shared: true}: load client.shared.js");
    const env = { ...globalEnv(), ...options.env };
    this.options = { ...DEFAULTS, ...options, env };
    this.env = env;
    this.state = "Disconnected";
    this.attempts = [];
    this._handlers = /* @__PURE__ */ new Map();
    this._pending = /* @__PURE__ */ new Map();
    this._listeners = Object.fromEntries(EVENTS.map((kind) => [kind, []]));
    this._nextId = 1;
    this.buffer = new MessageBuffer(false);
    const connection = this.connection = new Connection(url, this.options);
    connection.onmessage = (message) => this._receive(message);
    connection.ondrop = (error) => this._dropped(error);
    connection.onattempt = (attempt) => {
      this.attempts.push(attempt);
      this._emit("attempt", attempt);
    };
    const wake = ({ type }) => this.state === "Reconnecting" ? this._wake?.() : connection.stateful && connection.drop(failure(type));
    for (const type of ["online", "pageshow", "resume"]) env.window?.addEventListener(type, wake, true);
  }
  /** The name of the transport in use, or null. */
  get transport() {
    return this.state === "Connected" ? this.connection.transportName : null;
  }
  /** The public id the server gave this connection, or null. */
  get connectionId() {
    return this.connection.connectionId;
  }
  /** Registers `fn` for server calls of `name` (case-insensitive). */
  on(name, fn) {
    const key = name.toLowerCase();
    this._handlers.set(key, [...this._handlers.get(key) || [], fn]);
  }
  /** Removes `fn`, or every handler of `name` when `fn` is omitted. */
  off(name, fn) {
    const key = name.toLowerCase();
    const rest = fn ? (this._handlers.get(key) || []).filter((h) => h !== fn) : [];
    rest.length ? this._handlers.set(key, rest) : this._handlers.delete(key);
  }
  /** Connects; rejects with an error naming every attempt when no transport works. */
  async start() {
    if (this.state !== "Disconnected") {
      throw failure(`Cannot start a HubConnection that is not in the 'Disconnected' state.`);
    }
    this._to("Connecting");
    this.attempts = [];
    try {
      await this.connection.start();
    } catch (error) {
      if (this.state === "Connecting") this._to("Disconnected");
      throw error;
    }
    this._opened();
  }
  /** Invokes a hub method; resolves with its result or rejects with its error. */
  invoke(target, ...args) {
    return new Promise((complete, error) => this._call(INVOCATION, target, args, { complete, error }));
  }
  /** Invokes a hub method without waiting for (or getting) a result. */
  async send(target, ...args) {
    this._call(INVOCATION, target, args);
  }
  /**
   * Invokes a streaming hub method: a Subject whose observers get each item (`next`), then `complete`
   * or `error`; disposing of the last subscription sends a CancelInvocation. Throws when not connected.
   */
  stream(target, ...args) {
    const subject = new Subject(() => this._pending.delete(id) && this._reply(CANCEL_INVOCATION, { invocationId: id }));
    const id = this._call(STREAM_INVOCATION, target, args, subject);
    return subject;
  }
  // Sends an invocation (or throws when not connected); a Subject argument becomes a stream id and its
  // items follow it. With `call` (an observer of the result: next, complete, error) it gets an id.
  _call(type, target, args, call) {
    const streams = args.filter((arg) => arg instanceof Subject);
    const streamIds = streams.map(() => String(this._nextId++));
    const invocationId = call && String(this._nextId++);
    this._write({ type, invocationId, target, arguments: args.filter((arg) => !streams.includes(arg)), streamIds: streamIds[0] && streamIds });
    if (call) this._pending.set(invocationId, call);
    streams.forEach((subject, i) => this._upload(subject, streamIds[i]));
    return invocationId;
  }
  // Sends a client-to-server stream: each item as a StreamItem, its end as a Completion; then nothing more.
  _upload(subject, invocationId) {
    const end = (error) => {
      subscription.dispose();
      this._reply(COMPLETION, { invocationId, error: error && String(error?.message || error) });
    };
    const subscription = subject.subscribe({
      next: (item) => this._reply(STREAM_ITEM, { invocationId, item }),
      complete: end,
      error: end
    });
  }
  /** Closes the connection; `onclose` fires if it had been connected. */
  async stop() {
    const was = this.state;
    if (was === "Disconnected" || was === "Disconnecting") return;
    this._to("Disconnecting");
    this._wake?.();
    this.connection.stop();
    this._close(void 0, was !== "Connecting");
  }
  _to(state) {
    if (!NEXT[STATES.indexOf(this.state)].includes(STATES.indexOf(state))) throw failure(`can't go from ${this.state} to ${state}`);
    this.state = state;
  }
  _emit(kind, value) {
    for (const fn of this._listeners[kind].slice()) this._guard(fn, [value]);
  }
  // Calls an application callback; what it throws is rethrown apart, as the browser reports it.
  _guard(fn, args) {
    try {
      fn.apply(this, args);
    } catch (error) {
      this.env.setTimeout(() => {
        throw error;
      }, 0);
    }
  }
  _write(message) {
    if (this.state !== "Connected") {
      throw failure(`Cannot send data if the connection is not in the 'Connected' State.`);
    }
    const record = this.options.protocol.write(message);
    this.buffer.sending(message, record);
    this.connection.send(record);
  }
  // A fresh connection (after start, or after a restart when the old token was gone).
  _opened(event) {
    this.buffer = new MessageBuffer(this.connection.stateful);
    this._to("Connected");
    if (event) this._emit("reconnected", this.connectionId);
    this._live();
  }
  // The same connection again: our Sequence and unacked messages go out first.
  async _resume() {
    await this.connection.resume();
    this._to("Connected");
    for (const record of this.buffer.replay((message) => this.options.protocol.write(message))) this.connection.send(record);
    this._emit("reconnected", this.connectionId);
    this._live();
  }
  // The transport may have dropped between its confirmation and now.
  _live() {
    if (this.connection.transport) this.connection.deliver();
    else this._dropped(failure("the transport dropped while connecting"));
  }
  _receive(message) {
    if (isTrackable(message) && this.buffer.enabled) this._ackSoon();
    if (!this.buffer.received(message)) return;
    try {
      RECEIVE[message.type]?.(this, message);
    } catch (error) {
      this.connection.stop();
      this._close(error);
    }
  }
  _ackSoon() {
    if (this._ackTimer) return;
    this._ackTimer = this.env.setTimeout(() => {
      this._ackTimer = null;
      if (this.state === "Connected") {
        this.connection.send(this.options.protocol.write({ type: ACK, sequenceId: this.buffer.latest }));
      }
    }, this.options.ackDelay);
  }
  _invocation({ target, arguments: args = [], invocationId }) {
    const fns = (this._handlers.get(String(target).toLowerCase()) || []).slice();
    if (invocationId) {
      new Promise((resolve) => {
        if (!fns.length) throw failure("Client didn't provide a result.");
        resolve(fns.shift().apply(this, args));
      }).then(
        (result) => this._reply(COMPLETION, { invocationId, result }),
        (error) => this._reply(COMPLETION, { invocationId, error: String(error?.message || error) })
      );
    }
    fns.forEach((fn) => this._guard(fn, args));
  }
  // Writes a message if connected; while resuming it waits in the replay buffer (if any) for the resume.
  _reply(type, fields) {
    const message = { type, ...fields };
    if (this.state === "Connected") this._write(message);
    else if (this.state === "Reconnecting") this.buffer.sending(message, this.options.protocol.write(message));
  }
  // Passes a stream item, the result or the error of invocation `id` to its observer.
  _settle(id, key, value) {
    const call = this._pending.get(id);
    if (key != "next") this._pending.delete(id);
    if (call?.[key]) this._guard(() => call[key](value), []);
  }
  _closeMessage({ error, allowReconnect }) {
    const reason = failure(error ? `Server closed the connection: ${error}` : "Server closed the connection.");
    if (allowReconnect) this.connection.drop(reason);
    else {
      this.connection.stop();
      this._close(error ? reason : void 0);
    }
  }
  _dropped(error) {
    if (this.state !== "Connected") return;
    if (!this.options.reconnectDelays?.length) {
      this.connection.stop();
      this._close(error);
      return;
    }
    this._reconnect(error);
  }
  // Resume the token after each delay; when the server says it is gone, start afresh instead.
  async _reconnect(error) {
    this._to("Reconnecting");
    this.attempts = [];
    this._emit("reconnecting", error);
    let gone = !this.connection.stateful;
    for (const delay of this.options.reconnectDelays) {
      if (!await this._sleep(delay)) return;
      try {
        if (!gone) return await this._resume();
      } catch (e) {
        if (this.state !== "Reconnecting") return;
        error = e;
        if (!e.gone) continue;
        gone = true;
      }
      try {
        return await this._restart();
      } catch (e) {
        if (this.state !== "Reconnecting") return;
        error = e;
      }
    }
    this.connection.stop();
    this._close(error);
  }
  async _restart() {
    await this.connection.start();
    this._cancelPending(failure("Invocation canceled: the connection started afresh."));
    this._opened(true);
  }
  // Resolves true after `ms` unless stopped meanwhile.
  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = ms ? this.env.setTimeout(resolve, ms) : resolve();
      this._wake = () => {
        this.env.clearTimeout(timer);
        resolve();
      };
    }).then(() => {
      this._wake = null;
      return this.state === "Reconnecting";
    });
  }
  _cancelPending(error) {
    for (const [id] of this._pending) this._settle(id, "error", error);
  }
  _close(error, notify = true) {
    this.env.clearTimeout(this._ackTimer);
    this._ackTimer = null;
    this._cancelPending(error || failure("Invocation canceled due to the underlying connection being closed."));
    this._to("Disconnected");
    if (notify) this._emit("close", error);
  }
};
for (const kind of EVENTS) {
  HubConnection.prototype[`on${kind}`] = function(fn) {
    this._listeners[kind].push(fn);
  };
}
export {
  Connection,
  ForeverFrame,
  HubConnection,
  HubConnectionState,
  JsonHubProtocol,
  LongPolling,
  MessageBuffer,
  MessageType,
  RS,
  ServerSentEvents,
  Subject,
  TRANSPORTS,
  WebSockets,
  isTrackable,
  parse,
  plan,
  write
};
