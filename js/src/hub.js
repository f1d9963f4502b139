// HubConnection: invocations, handlers, acks and the reconnect policy over a Connection.
import { Connection } from "./connection.js";
import { MessageBuffer } from "./buffer.js";
import { json, isTrackable, ACK, CANCEL_INVOCATION, CLOSE, COMPLETION, INVOCATION, SEQUENCE, STREAM_INVOCATION, STREAM_ITEM } from "./protocol.js";
import { Subject } from "./subject.js";
import { failure } from "./errors.js";

const STATES = ["Disconnected", "Connecting", "Connected", "Reconnecting", "Disconnecting"];

/** Connection states. */
export const HubConnectionState = Object.fromEntries(STATES.map((state) => [state, state]));

// The only moves the state machine makes: from each state (by index in STATES), the indexes it may go to.
const NEXT = ["1", "240", "340", "240", "0"];

// The events `on<kind>(fn)` subscribes to: close(error?), reconnecting(error), reconnected(connectionId)
// (the same id after a resume, a new one after a restart), attempt({transport, outcome, reason, ms, resume}).
const EVENTS = ["close", "reconnecting", "reconnected", "attempt"];

// `transports` is left out: none (whatever the server offers, in its order).
const DEFAULTS = {
  withCredentials: false,
  startTimeout: 5000,
  keepAliveInterval: 15000,
  serverTimeout: 30000,
  reconnectDelays: [0, 2000, 10000, 30000],
  ackDelay: 1000,
  protocol: json,
};

/** The browser's globals, wrapped so they keep their `this`. */
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
    now: Date.now,
  };
}

// Handlers each message type gets; other types (Ping, unknown ones) are ignored.
const RECEIVE = {
  [INVOCATION]: (hub, m) => hub._invocation(m),
  [STREAM_ITEM]: (hub, m) => hub._settle(m.invocationId, "next", m.item),
  [COMPLETION]: (hub, { invocationId, error, result }) => hub._settle(invocationId, error ? "error" : "complete", error ? failure(error) : result),
  [CLOSE]: (hub, m) => hub._closeMessage(m),
  [ACK]: (hub, m) => hub.buffer.ack(m.sequenceId),
  [SEQUENCE]: (hub, m) => hub.buffer.sequence(m.sequenceId),
};

export class HubConnection {
  /**
   * @param {string} url the hub's base URL, e.g. "/hubs/jobs"
   * @param {object} [options] see gateway.d.ts: transports, withCredentials, startTimeout,
   *   keepAliveInterval, serverTimeout, reconnectDelays, ackDelay, protocol, env
   */
  constructor(url, options = {}) {
    // Shared mode lives in its own entry (client.shared.js): its HubConnection, a subclass of this one,
    // handles {shared: true} before it gets here.
    if (options.shared) throw failure("{shared: true}: load client.shared.js");
    const env = { ...globalEnv(), ...options.env };
    this.options = { ...DEFAULTS, ...options, env };
    this.env = env;
    this.state = "Disconnected";
    /** The attempt records of the latest start or reconnect. */
    this.attempts = [];
    this._handlers = new Map();
    this._pending = new Map();
    this._listeners = Object.fromEntries(EVENTS.map((kind) => [kind, []]));
    this._nextId = 1;
    this.buffer = new MessageBuffer(false);
    const connection = (this.connection = new Connection(url, this.options));
    connection.onmessage = (message) => this._receive(message);
    connection.ondrop = (error) => this._dropped(error);
    connection.onattempt = (attempt) => {
      this.attempts.push(attempt);
      this._emit("attempt", attempt);
    };
    // The network came back, the tab was unfrozen ("resume", fired at the document: a capturing listener on
    // the window gets it) or shown from the back/forward cache: whatever the transport says, it may be dead,
    // so skip the reconnect delay, or resume now. (A tab that only becomes visible needs nothing: the
    // browser runs the timers that throttling held back, server timeout included, as soon as it shows.)
    // (The first "pageshow" comes at load, with nothing to drop yet.)
    // The reconnecting event's error names the page event ("online", "resume", "pageshow").
    const wake = ({ type }) => (this.state === "Reconnecting" ? this._wake?.() : connection.stateful && connection.drop(failure(type)));
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
    this._handlers.set(key, [...(this._handlers.get(key) || []), fn]);
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
    // Nothing can answer before this runs: the transport delivers asynchronously.
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
      error: end,
    });
  }

  /** Closes the connection; `onclose` fires if it had been connected. */
  async stop() {
    const was = this.state;
    if (was === "Disconnected" || was === "Disconnecting") return;
    this._to("Disconnecting");
    this._wake?.();
    this.connection.stop();
    this._close(undefined, was !== "Connecting");
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
    // With an id the server waits for a result: the first handler's value (or promise), or its error.
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
      this._close(error ? reason : undefined);
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
      if (!(await this._sleep(delay))) return;
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
}

// onclose, onreconnecting, onreconnected, onattempt: each adds `fn` to its event's listeners.
for (const kind of EVENTS) {
  HubConnection.prototype[`on${kind}`] = function (fn) {
    this._listeners[kind].push(fn);
  };
}
