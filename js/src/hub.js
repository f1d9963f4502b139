// HubConnection: invocations, handlers, acks and the reconnect policy over a Connection.
import { Connection } from "./connection.js";
import { MessageBuffer } from "./buffer.js";
import { MessageType, isTrackable, write } from "./protocol.js";
import { failure } from "./errors.js";

/** Connection states. */
export const HubConnectionState = {
  Disconnected: "Disconnected",
  Connecting: "Connecting",
  Connected: "Connected",
  Reconnecting: "Reconnecting",
  Disconnecting: "Disconnecting",
};
const S = HubConnectionState;

// The only moves the state machine makes.
const NEXT = {
  Disconnected: [S.Connecting],
  Connecting: [S.Connected, S.Disconnecting, S.Disconnected],
  Connected: [S.Reconnecting, S.Disconnecting, S.Disconnected],
  Reconnecting: [S.Connected, S.Disconnecting, S.Disconnected],
  Disconnecting: [S.Disconnected],
};

const DEFAULTS = {
  transports: null,
  withCredentials: false,
  startTimeout: 5000,
  keepAliveInterval: 15000,
  serverTimeout: 30000,
  reconnectDelays: [0, 2000, 10000, 30000],
  ackDelay: 1000,
};

/** The browser's globals, wrapped so they keep their `this`. */
function globalEnv() {
  const g = globalThis;
  return {
    WebSocket: g.WebSocket,
    EventSource: g.EventSource,
    fetch: g.fetch && ((...args) => g.fetch(...args)),
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (id) => g.clearTimeout(id),
    document: g.document,
    window: g.window,
    location: g.location,
    now: () => Date.now(),
  };
}

// Handlers each message type gets; other types (Ping, unknown ones) are ignored.
const RECEIVE = {
  [MessageType.Invocation]: (hub, m) => hub._invocation(m),
  [MessageType.Completion]: (hub, m) => hub._completion(m),
  [MessageType.Close]: (hub, m) => hub._closeMessage(m),
  [MessageType.Ack]: (hub, m) => hub.buffer.ack(m.sequenceId),
  [MessageType.Sequence]: (hub, m) => hub.buffer.sequence(m.sequenceId),
};

export class HubConnection {
  /**
   * @param {string} url the hub's base URL, e.g. "/hubs/jobs"
   * @param {object} [options] see gateway.d.ts: transports, withCredentials, startTimeout,
   *   keepAliveInterval, serverTimeout, reconnectDelays, ackDelay, env
   */
  constructor(url, options = {}) {
    const env = { ...globalEnv(), ...options.env };
    this.options = { ...DEFAULTS, ...options, env };
    this.env = env;
    this.state = S.Disconnected;
    /** The attempt records of the latest start or reconnect. */
    this.attempts = [];
    this._handlers = new Map();
    this._pending = new Map();
    this._listeners = { close: [], reconnecting: [], reconnected: [], attempt: [] };
    this._nextId = 1;
    this.buffer = new MessageBuffer(false);
    const connection = (this.connection = new Connection(url, this.options));
    connection.onmessage = (message) => this._receive(message);
    connection.ondrop = (error) => this._dropped(error);
    connection.onattempt = (attempt) => {
      this.attempts.push(attempt);
      this._emit("attempt", attempt);
    };
  }

  /** The name of the transport in use, or null. */
  get transport() {
    return this.state === S.Connected ? this.connection.transportName : null;
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

  /** Calls `fn(error?)` when the connection closes for good. */
  onclose(fn) {
    this._listeners.close.push(fn);
  }

  /** Calls `fn(error)` when the transport dropped and reconnecting begins. */
  onreconnecting(fn) {
    this._listeners.reconnecting.push(fn);
  }

  /** Calls `fn(connectionId)` when reconnected (same id after a resume, a new one after a restart). */
  onreconnected(fn) {
    this._listeners.reconnected.push(fn);
  }

  /** Calls `fn(attempt)` for every transport attempt: {transport, outcome, reason, ms, resume}. */
  onattempt(fn) {
    this._listeners.attempt.push(fn);
  }

  /** Connects; rejects with an error naming every attempt when no transport works. */
  async start() {
    if (this.state !== S.Disconnected) {
      throw failure(`Cannot start a HubConnection that is not in the 'Disconnected' state.`);
    }
    this._to(S.Connecting);
    this.attempts = [];
    try {
      await this.connection.start();
    } catch (error) {
      if (this.state === S.Connecting) this._to(S.Disconnected);
      throw error;
    }
    this._opened();
  }

  /** Invokes a hub method; resolves with its result or rejects with its error. */
  invoke(target, ...args) {
    const invocationId = String(this._nextId++);
    return new Promise((resolve, reject) => {
      this._pending.set(invocationId, { resolve, reject });
      this._write({ type: MessageType.Invocation, invocationId, target, arguments: args });
    }).finally(() => this._pending.delete(invocationId));
  }

  /** Invokes a hub method without waiting for (or getting) a result. */
  async send(target, ...args) {
    this._write({ type: MessageType.Invocation, target, arguments: args });
  }

  /** Closes the connection; `onclose` fires if it had been connected. */
  async stop() {
    const was = this.state;
    if (was === S.Disconnected || was === S.Disconnecting) return;
    this._to(S.Disconnecting);
    this._wake?.();
    this.connection.stop();
    this._close(undefined, was !== S.Connecting);
  }

  _to(state) {
    if (!NEXT[this.state].includes(state)) throw failure(`can't go from ${this.state} to ${state}`);
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
    if (this.state !== S.Connected) {
      throw failure(`Cannot send data if the connection is not in the 'Connected' State.`);
    }
    const record = write(message);
    this.buffer.sending(message, record);
    this.connection.send(record);
  }

  // A fresh connection (after start, or after a restart when the old token was gone).
  _opened(event) {
    this.buffer = new MessageBuffer(this.connection.stateful);
    this._to(S.Connected);
    if (event) this._emit("reconnected", this.connectionId);
    this._live();
  }

  // The same connection again: our Sequence and unacked messages go out first.
  _resumed() {
    this._to(S.Connected);
    this.connection.send(this.buffer.replay());
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
      if (this.state === S.Connected) {
        this.connection.send(write({ type: MessageType.Ack, sequenceId: this.buffer.latest }));
      }
    }, this.options.ackDelay);
  }

  _invocation({ target, arguments: args = [], invocationId }) {
    const fns = (this._handlers.get(String(target).toLowerCase()) || []).slice();
    if (!invocationId) return fns.forEach((fn) => this._guard(fn, args));
    // The server waits for a result: the last handler's value, or the error.
    new Promise((resolve) => {
      if (!fns.length) throw failure(`Client didn't provide a result for '${target}'.`);
      let value;
      for (const fn of fns) value = fn.apply(this, args);
      resolve(value);
    }).then(
      (value) => this._reply({ invocationId, result: value }),
      (error) => this._reply({ invocationId, error: String(error?.message || error) })
    );
  }

  _reply(completion) {
    if (this.state === S.Connected) this._write({ type: MessageType.Completion, ...completion });
  }

  _completion({ invocationId, error, result }) {
    const call = this._pending.get(invocationId);
    if (!call) return;
    error ? call.reject(failure(error)) : call.resolve(result);
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
    if (this.state !== S.Connected) return;
    if (!this.options.reconnectDelays?.length) {
      this.connection.stop();
      this._close(error);
      return;
    }
    this._reconnect(error);
  }

  // Resume the token after each delay; when the server says it is gone, start afresh instead.
  async _reconnect(error) {
    this._to(S.Reconnecting);
    this.attempts = [];
    this._emit("reconnecting", error);
    let gone = !this.connection.stateful;
    for (const delay of this.options.reconnectDelays) {
      if (!(await this._sleep(delay))) return;
      try {
        if (!gone) return await this._resume();
      } catch (e) {
        if (this.state !== S.Reconnecting) return;
        error = e;
        if (!e.gone) continue;
        gone = true;
      }
      try {
        return await this._restart();
      } catch (e) {
        if (this.state !== S.Reconnecting) return;
        error = e;
      }
    }
    this.connection.stop();
    this._close(error);
  }

  async _resume() {
    await this.connection.resume();
    this._resumed();
  }

  async _restart() {
    await this.connection.start();
    this._cancelPending(failure("Invocation canceled: the connection was lost and started afresh."));
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
      return this.state === S.Reconnecting;
    });
  }

  _cancelPending(error) {
    for (const call of this._pending.values()) call.reject(error);
    this._pending.clear();
  }

  _close(error, notify = true) {
    this.env.clearTimeout(this._ackTimer);
    this._ackTimer = null;
    this._cancelPending(error || failure("Invocation canceled due to the underlying connection being closed."));
    this._to(S.Disconnected);
    if (notify) this._emit("close", error);
  }
}
