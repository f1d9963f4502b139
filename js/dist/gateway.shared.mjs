// src/shared/host.js
var RELEASES = { Subscribe: "Unsubscribe" };
var BEAT = 1e4;
var EVICT_AFTER = 6e4;
var RECEIVE = {
  pong: () => {
  },
  bye: (host, record) => host.leave(record.tab),
  on: (host, record, m) => host._on(record, m),
  off: (host, record, m) => host._off(record, m),
  invoke: (host, record, m) => host._invoke(record, m),
  send: (host, record, m) => host._send(record, m),
  stream: (host, record, m) => host._stream(record, m),
  cancel: (host, record, m) => host._cancel(record, m),
  answer: (host, record, m) => host._answer(record, m)
};
var lower = (name) => String(name).toLowerCase();
var Host = class {
  /**
   * @param {Function} HubConnection the core client's class (created with the first tab's options)
   * @param {(tab: any, message: object) => void} post delivers a message to a tab
   * @param {{releases?: object, now?: () => number, env?: object, onhub?: Function}} [settings] `env` goes to the
   *   HubConnection (tests); `onhub(hub, url, options)` is called with each HubConnection the host creates
   */
  constructor(HubConnection, post, { releases = RELEASES, now = Date.now, env, onhub } = {}) {
    this.HubConnection = HubConnection;
    this.env = env;
    this.onhub = onhub;
    this.post = post;
    this.now = now;
    this.hub = null;
    this.tabs = /* @__PURE__ */ new Map();
    this._releases = new Map(Object.entries(releases).map(([hold, release]) => [lower(hold), release]));
    this._held = /* @__PURE__ */ new Map();
    this._names = /* @__PURE__ */ new Map();
    this._answers = /* @__PURE__ */ new Map();
    this._nextAnswer = 1;
  }
  /** A message from `tab`; `hello` first (it carries the hub URL as `hub` and the options as `config`). */
  receive(tab, message) {
    const record = this.tabs.get(tab);
    if (record) record.seen = this.now();
    if (message.t === "hello") return this._hello(tab, message);
    if (!record) return this.post(tab, { t: "gone" });
    RECEIVE[message.t]?.(this, record, message);
  }
  /** Pings every tab and forgets those silent for `EVICT_AFTER`; call it every few seconds. */
  beat() {
    for (const [tab, record] of [...this.tabs]) {
      if (this.now() - record.seen > EVICT_AFTER) this.leave(tab);
      else this.post(tab, { t: "ping" });
    }
  }
  /** Forgets `tab`: its names, streams, holds and pending answers; stops the hub when no tab is left. */
  leave(tab) {
    const record = this.tabs.get(tab);
    if (!record) return;
    this.tabs.delete(tab);
    for (const name of record.names) this._unlisten(name);
    for (const subscription of record.streams.values()) subscription.dispose();
    for (const [key, hold] of record.holds) this._release(key, hold);
    for (const [id, answer] of this._answers) if (answer.tab === tab) answer.reject(new Error("the tab left"));
    if (!this.tabs.size && this.hub) {
      const hub = this.hub;
      this.hub = null;
      hub.stop();
    }
  }
  // A tab the host already knows (after a takeover) keeps its record: a hold released and taken again
  // would unsubscribe the connection meanwhile.
  _hello(tab, { hub: url, config: options, names = [], holds = [] }) {
    if (!this.hub) this._create(url, options);
    this._restore(tab, names, holds, this.hub.state === "Connected");
    this.post(tab, this._state());
    if (this.hub.state === "Disconnected") this._start();
  }
  // The record of `tab` with these names and holds added; with `join`, a hold new to the connection is sent.
  _restore(tab, names, holds, join) {
    const record = this.tabs.get(tab) || { tab, names: /* @__PURE__ */ new Set(), streams: /* @__PURE__ */ new Map(), holds: /* @__PURE__ */ new Map() };
    record.seen = this.now();
    this.tabs.set(tab, record);
    names.forEach((name) => this._on(record, { name }));
    for (const [target, args] of holds) {
      const had = this._held.has(this._key(target, args));
      if (this._hold(record, target, args) && join && !had) this.hub.send(target, ...args).catch(() => {
      });
    }
    return record;
  }
  /** What a new host needs to serve the tabs as this one did: each tab's names and holds, with `url` and `options`. */
  tabsState() {
    return [...this.tabs.values()].map(({ tab, names, holds }) => [tab, [...names], [...holds.values()].map(({ target, args }) => [target, args])]);
  }
  /**
   * Takes over from a host that went away: the same tabs (`tabs` from its `tabsState()`), and its
   * connection, which `adopt(hub)` turns the new HubConnection into and resumes.
   */
  takeOver(url, options, tabs, adopt2) {
    this._create(url, options);
    for (const [tab, names, holds] of tabs) this._restore(tab, names, holds, false);
    adopt2(this.hub);
  }
  _create(url, options) {
    this.url = url;
    this.options = options;
    const hub = this.hub = new this.HubConnection(url, { ...options, env: this.env, shared: false });
    this.onhub?.(hub);
    const event = (kind) => (value) => this.hub === hub && this._all({ t: "event", kind, value: kind === "attempt" ? value : value && String(value.message || value) });
    for (const kind of ["reconnecting", "reconnected", "close", "attempt"]) hub[`on${kind}`](event(kind));
    let before;
    hub.onreconnecting(() => before = hub.connectionId);
    hub.onreconnected((id) => id !== before && this._resubscribe(hub));
    for (const name of this._names.keys()) hub.on(name, this._dispatcher(name));
  }
  async _start() {
    const hub = this.hub;
    try {
      await hub.start();
      this._resubscribe(hub);
      if (hub === this.hub) this._all(this._state());
    } catch (error) {
      if (hub === this.hub) this._all({ t: "failed", error: String(error.message), attempts: hub.attempts });
    }
  }
  // The groups the tabs hold were joined by an earlier connection (a restart, or a new one after a takeover).
  _resubscribe(hub) {
    for (const [key, { target, args }] of this._held) if (key && hub === this.hub) hub.send(target, ...args).catch(() => {
    });
  }
  _state() {
    const hub = this.hub;
    return { t: "state", state: hub.state, transport: hub.transport, connectionId: hub.connectionId };
  }
  _all(message) {
    for (const tab of this.tabs.keys()) this.post(tab, message);
  }
  _on(record, { name }) {
    const key = lower(name);
    if (record.names.has(key)) return;
    record.names.add(key);
    const count = this._names.get(key) || 0;
    this._names.set(key, count + 1);
    if (!count) this.hub?.on(key, this._dispatcher(key));
  }
  _off(record, { name }) {
    const key = lower(name);
    if (record.names.delete(key)) this._unlisten(key);
  }
  _unlisten(key) {
    const count = this._names.get(key) - 1;
    if (count) return this._names.set(key, count);
    this._names.delete(key);
    this.hub?.off(key);
  }
  // One handler per name on the shared hub: every listening tab gets the call; the first one's answer is
  // the client result (the hub ignores it for a call without an id).
  _dispatcher(key) {
    return (...args) => {
      const tabs = [...this.tabs.values()].filter((record) => record.names.has(key));
      if (!tabs.length) return void 0;
      const id = this._nextAnswer++;
      const answer = new Promise((resolve, reject) => this._answers.set(id, { tab: tabs[0].tab, resolve, reject }));
      tabs.forEach((record, i) => this.post(record.tab, { t: "call", name: key, args, id: i ? void 0 : id }));
      return answer;
    };
  }
  _answer(record, { id, ok, value }) {
    const answer = this._answers.get(id);
    if (!answer || answer.tab !== record.tab) return;
    this._answers.delete(id);
    ok ? answer.resolve(value) : answer.reject(new Error(value));
  }
  _invoke(record, { id, target, args }) {
    const reply = (ok, value) => this.post(record.tab, { t: "settle", id, key: ok ? "complete" : "error", value });
    if (this._unhold(record, target, args)) return reply(true, null);
    const key = this._hold(record, target, args);
    this._call(() => this.hub.invoke(target, ...args)).then(
      (value) => reply(true, value),
      (error) => {
        if (key) this._release(key, record.holds.get(key), record);
        reply(false, String(error.message));
      }
    );
  }
  _send(record, { target, args }) {
    if (this._unhold(record, target, args)) return;
    this._hold(record, target, args);
    this._call(() => this.hub.send(target, ...args)).catch(() => {
    });
  }
  _stream(record, { id, target, args }) {
    const settle = (key) => (value) => this.post(record.tab, { t: "settle", id, key, value: key === "error" ? String(value.message || value) : value });
    try {
      record.streams.set(id, this.hub.stream(target, ...args).subscribe({ next: settle("next"), complete: settle("complete"), error: settle("error") }));
    } catch (error) {
      settle("error")(error);
    }
  }
  _cancel(record, { id }) {
    record.streams.get(id)?.dispose();
    record.streams.delete(id);
  }
  async _call(fn) {
    if (!this.hub) throw new Error("no connection");
    return fn();
  }
  // The key a hold call (Subscribe) is counted under: its release call's; "" for other methods.
  _key(target, args) {
    const release = this._releases.get(lower(target));
    return release ? lower(release) + JSON.stringify(args) : "";
  }
  // A hold method (Subscribe): counted under the key of its release call. Returns the key, or "".
  _hold(record, target, args) {
    const key = this._key(target, args);
    if (!key) return "";
    const release = this._releases.get(lower(target));
    if (record.holds.has(key)) return key;
    const hold = { target, args, release, count: (this._held.get(key)?.count || 0) + 1 };
    record.holds.set(key, hold);
    this._held.set(key, hold);
    return key;
  }
  // A release method (Unsubscribe) of a hold that other tabs keep: true when it must not reach the server.
  _unhold(record, target, args) {
    const key = lower(target) + JSON.stringify(args);
    const hold = record.holds.get(key);
    if (!hold) return false;
    record.holds.delete(key);
    const count = --this._held.get(key).count;
    if (!count) this._held.delete(key);
    return count > 0;
  }
  // Drops `record`'s hold of `key` (a departing tab, or a hold call that failed); the last one sends the release.
  _release(key, hold, record) {
    record?.holds.delete(key);
    const shared2 = this._held.get(key);
    if (!hold || !shared2 || --shared2.count) return;
    this._held.delete(key);
    if (!record && this.hub?.state === "Connected") this.hub.send(hold.release, ...hold.args).catch(() => {
    });
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

// src/shared/tab.js
var EVENTS = ["close", "reconnecting", "reconnected", "attempt"];
var RECEIVE2 = {
  ping: (tab) => tab._post({ t: "pong" }),
  gone: (tab) => tab.rejoin(),
  state: (tab, m) => tab._state(m),
  failed: (tab, m) => tab._failed(m),
  event: (tab, m) => tab._event(m),
  call: (tab, m) => tab._run(m),
  settle: (tab, m) => tab._settle(m)
};
var STATE = { reconnecting: "Reconnecting", reconnected: "Connected", close: "Disconnected" };
var SharedHubConnection = class {
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
    this._handlers = /* @__PURE__ */ new Map();
    this._pending = /* @__PURE__ */ new Map();
    this._holds = /* @__PURE__ */ new Map();
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
    this._closed(void 0);
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
    RECEIVE2[message.t]?.(this, message);
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
    if (kind === "close") return this._closed(value ? new Error(value) : void 0);
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
};

// src/shared/handover.js
function snapshot(hub) {
  const { connection, buffer } = hub;
  if (!connection.token || !connection.stateful) return null;
  return {
    id: connection.connectionId,
    token: connection.token,
    offer: connection._offer,
    plan: connection._plan.map(({ name, skip }) => [name, skip]),
    index: connection._index,
    latest: buffer.latest,
    sent: buffer.sent,
    unacked: buffer.unacked
  };
}
function watch(hub, fn) {
  const connection = hub.connection;
  const { send, onmessage } = connection;
  connection.send = (records) => {
    send.call(connection, records);
    fn();
  };
  connection.onmessage = (message) => {
    onmessage(message);
    fn();
  };
}
function adopt(hub, state, TRANSPORTS) {
  const { connection } = hub;
  connection._use({ connectionId: state.id, connectionToken: state.token, useStatefulReconnect: true, availableTransports: state.offer });
  connection._plan = state.plan.map(([name, skip]) => ({ name, skip, T: TRANSPORTS.find((T) => T.transportName === name) }));
  connection._index = state.index;
  const buffer = new hub.buffer.constructor(true);
  Object.assign(buffer, { latest: state.latest, next: state.latest + 1, sent: state.sent, unacked: state.unacked });
  hub.buffer = buffer;
  hub.state = "Connected";
  hub._dropped(new Error("the leader tab left"));
}

// src/shared/channels.js
function workerChannel(workerUrl, g) {
  const port = new g.SharedWorker(workerUrl, { name: "gateway" }).port;
  const channel = { post: (message) => port.postMessage(message), onmessage: null };
  port.onmessage = ({ data }) => channel.onmessage?.(data);
  port.start();
  return channel;
}
function leaderChannel(url, HubConnection, TRANSPORTS, g, env) {
  const me = Math.random().toString(36).slice(2);
  const name = `gateway:${url}`;
  const broadcast = new g.BroadcastChannel(name);
  const channel = { onmessage: null, onlead: null };
  let host = null;
  let last = null;
  const local = (message) => queueMicrotask(() => channel.onmessage?.(message));
  const publish = () => {
    const state = host.hub && snapshot(host.hub);
    if (state) broadcast.postMessage({ handover: { hub: host.url, config: host.options, leader: me, tabs: host.tabsState(), state } });
  };
  const receive = (tab, message) => {
    host.receive(tab, message);
    publish();
  };
  channel.post = (message) => host ? receive(me, message) : broadcast.postMessage({ from: me, m: message });
  broadcast.onmessage = ({ data }) => {
    if (data.handover) last = data.handover;
    else if (data.lead) channel.onlead?.();
    else if (host && data.from) receive(data.from, data.m);
    else if (data.to === me) channel.onmessage?.(data.m);
  };
  g.navigator.locks.request(name, () => {
    host = new Host(HubConnection, (tab, message) => tab === me ? local(message) : broadcast.postMessage({ to: tab, m: message }), {
      onhub: (hub) => watch(hub, publish),
      env
    });
    if (last) takeOver(host, last, TRANSPORTS);
    g.setInterval(() => host.beat(), BEAT);
    broadcast.postMessage({ lead: true });
    channel.onlead?.();
    return new Promise(() => {
    });
  });
  return channel;
}
function takeOver(host, { hub, config, leader, tabs, state }, TRANSPORTS) {
  const ordered = [...tabs.filter(([tab]) => tab !== leader), ...tabs.filter(([tab]) => tab === leader)];
  host.takeOver(hub, config, ordered, (adopted) => adopt(adopted, state, TRANSPORTS));
}
function shared(HubConnection, url, options, g = globalThis, TRANSPORTS = g.Gateway?.TRANSPORTS) {
  const absolute = new URL(url, g.location.href).href;
  const pageOnly = options.transports?.every((name) => name === "ForeverFrame");
  let channel;
  if (g.SharedWorker && !pageOnly) {
    channel = workerChannel(options.workerUrl || absolute.split("?")[0].replace(/\/?$/, "/client.worker.js"), g);
  } else if (g.navigator?.locks && g.BroadcastChannel) {
    channel = leaderChannel(absolute, HubConnection, TRANSPORTS, g, options.env);
  } else {
    return new HubConnection(url, { ...options, shared: false });
  }
  const tab = new SharedHubConnection(absolute, options, channel);
  channel.onlead = () => tab.rejoin();
  g.addEventListener?.("pagehide", () => tab.state !== "Disconnected" && channel.post({ t: "bye" }));
  g.addEventListener?.("pageshow", (event) => event.persisted && tab.rejoin());
  return tab;
}
function withShared(HubConnection, TRANSPORTS) {
  return class extends HubConnection {
    constructor(url, options = {}) {
      if (options.shared) return shared(HubConnection, url, options, globalThis, TRANSPORTS);
      super(url, options);
    }
  };
}
export {
  BEAT,
  EVICT_AFTER,
  Host,
  RELEASES,
  SharedHubConnection,
  leaderChannel,
  shared,
  withShared,
  workerChannel
};
