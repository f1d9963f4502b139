// SharedHubConnection: a tab's HubConnection in shared mode. It has the HubConnection API, but the
// physical connection lives in a Host (a SharedWorker, or the leader tab) reached through a channel:
// `channel.post(message)` sends to the host and `channel.onmessage` gets its answers.
import { Subject } from "../subject.js";

const EVENTS = ["close", "reconnecting", "reconnected", "attempt"];
// What the host sends, by its `t` (a table, not method names built from strings: the build renames private members).
const RECEIVE = {
  ping: (tab) => tab._post({ t: "pong" }),
  gone: (tab) => tab.rejoin(),
  state: (tab, m) => tab._state(m),
  failed: (tab, m) => tab._failed(m),
  event: (tab, m) => tab._event(m),
  call: (tab, m) => tab._run(m),
  settle: (tab, m) => tab._settle(m),
};
const STATE = { reconnecting: "Reconnecting", reconnected: "Connected", close: "Disconnected" };

export class SharedHubConnection {
  /**
   * @param {string} url the hub's absolute URL
   * @param {object} options the HubConnection options the host creates its connection with
   * @param {{post: Function, onmessage: Function|null, close?: Function}} channel to the host
   */
  constructor(url, options, channel) {
    this.url = url;
    this.options = options;
    this.channel = channel;
    this.shared = true;
    this.state = "Disconnected";
    this.transport = this.connectionId = null;
    this.attempts = [];
    this._handlers = new Map();
    this._pending = new Map();
    this._holds = new Map();
    this._listeners = Object.fromEntries(EVENTS.map((kind) => [kind, []]));
    this._nextId = 1;
    channel.onmessage = (message) => this._receive(message);
  }

  on(name, fn) {
    const key = name.toLowerCase();
    const fns = this._handlers.get(key) || [];
    this._handlers.set(key, [...fns, fn]);
    if (!fns.length && this.state !== "Disconnected") this._post({ t: "on", name: key });
  }

  off(name, fn) {
    const key = name.toLowerCase();
    const rest = fn ? (this._handlers.get(key) || []).filter((h) => h !== fn) : [];
    if (rest.length) return this._handlers.set(key, rest);
    this._handlers.delete(key);
    if (this.state !== "Disconnected") this._post({ t: "off", name: key });
  }

  onclose(fn) {
    this._listeners.close.push(fn);
  }

  onreconnecting(fn) {
    this._listeners.reconnecting.push(fn);
  }

  onreconnected(fn) {
    this._listeners.reconnected.push(fn);
  }

  onattempt(fn) {
    this._listeners.attempt.push(fn);
  }

  /** Joins the shared connection; resolves once the host reports it connected. */
  start() {
    if (this.state !== "Disconnected") return Promise.reject(new Error("Cannot start a HubConnection that is not in the 'Disconnected' state."));
    this.state = "Connecting";
    return new Promise((resolve, reject) => {
      this._starting = { resolve, reject };
      this._hello();
    });
  }

  /** Leaves the shared connection (it stays open while other tabs use it). */
  async stop() {
    if (this.state === "Disconnected") return;
    this._post({ t: "bye" });
    this._closed(undefined);
  }

  invoke(target, ...args) {
    return new Promise((complete, error) => this._call("invoke", target, args, { complete, error }));
  }

  async send(target, ...args) {
    this._call("send", target, args);
  }

  stream(target, ...args) {
    const subject = new Subject(() => this._pending.delete(id) && this._post({ t: "cancel", id }));
    const id = this._call("stream", target, args, subject);
    return subject;
  }

  /** Says hello again (after the back/forward cache, or to a new leader): names and holds go with it. */
  rejoin() {
    if (this.state === "Disconnected") return;
    if (this.state !== "Connecting") this._cancelPending("the shared connection's host changed");
    this._hello();
  }

  _hello() {
    const { env, ...options } = this.options;
    // Message fields are never names the build renames (url, options...): the host may be another bundle.
    this._post({ t: "hello", hub: this.url, config: options, names: [...this._handlers.keys()], holds: [...this._holds.values()] });
  }

  _post(message) {
    this.channel.post(message);
  }

  _call(t, target, args, call) {
    if (this.state !== "Connected") throw new Error("Cannot send data if the connection is not in the 'Connected' State.");
    if (args.some((arg) => arg instanceof Subject)) throw new Error("client-to-server streams are not available in shared mode");
    const id = call && this._nextId++;
    if (call) this._pending.set(id, call);
    this._track(target, args);
    this._post({ t, id, target, args });
    return id;
  }

  // Remembers this tab's Subscribe(args) calls, so that a rejoin restores them.
  _track(target, args) {
    const key = JSON.stringify(args);
    const name = target.toLowerCase();
    if (name === "subscribe") this._holds.set(key, [target, args]);
    if (name === "unsubscribe") this._holds.delete(key);
  }

  _receive(message) {
    if (this.state === "Disconnected") return;
    RECEIVE[message.t]?.(this, message);
  }

  _state({ state, transport, connectionId }) {
    Object.assign(this, { transport, connectionId });
    if (state !== "Connected") return;
    this.state = state;
    this._starting?.resolve();
    this._starting = null;
  }

  _failed({ error, attempts }) {
    this.attempts = attempts;
    this._closed(Object.assign(new Error(error), { attempts }));
  }

  _event({ kind, value }) {
    if (kind === "attempt") this.attempts.push(value);
    if (kind === "reconnecting") this.attempts = [];
    if (STATE[kind]) this.state = STATE[kind];
    if (kind === "reconnected") this.connectionId = value;
    if (kind === "close") return this._closed(value ? new Error(value) : undefined);
    this._emit(kind, kind === "reconnecting" ? new Error(value) : value);
  }

  // A server-to-client invocation: every handler runs; with an id, the first one's value is the answer.
  _run({ name, args, id }) {
    const fns = (this._handlers.get(name) || []).slice();
    if (id) {
      new Promise((resolve) => {
        if (!fns.length) throw new Error("Client didn't provide a result.");
        resolve(fns.shift().apply(this, args));
      }).then(
        (value) => this._post({ t: "answer", id, ok: true, value }),
        (error) => this._post({ t: "answer", id, ok: false, value: String(error?.message || error) })
      );
    }
    for (const fn of fns) this._guard(() => fn.apply(this, args));
  }

  _settle({ id, key, value }) {
    const call = this._pending.get(id);
    if (key !== "next") this._pending.delete(id);
    if (call?.[key]) this._guard(() => call[key](key === "error" ? new Error(value) : value));
  }

  _emit(kind, value) {
    for (const fn of this._listeners[kind].slice()) this._guard(() => fn.call(this, value));
  }

  _guard(fn) {
    try {
      fn();
    } catch (error) {
      setTimeout(() => {
        throw error;
      }, 0);
    }
  }

  _cancelPending(reason) {
    for (const [id] of this._pending) this._settle({ id, key: "error", value: `Invocation canceled: ${reason}.` });
  }

  _closed(error) {
    const was = this.state;
    this.state = "Disconnected";
    this.transport = null;
    this._cancelPending("the connection was closed");
    this._starting?.reject(error || new Error("stopped"));
    this._starting = null;
    if (was !== "Connecting") this._emit("close", error);
  }
}
