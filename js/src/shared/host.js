// Host: the one HubConnection of a hub, shared by the tabs of a browser. Sans-IO: a tab is an id, what a
// tab sends comes in through `receive(tab, message)` and what it gets goes out through `post(tab, message)`;
// the SharedWorker (or the leader tab) owns the ports and the heartbeat clock.
//
// Routing. Each tab numbers its own calls; a result, a stream item or an error goes back to the tab that
// asked, under the tab's own id. A server-to-client call goes to every tab that registered its name; a
// client result (an invocation with an id) is answered by the first of them, as a page's first handler
// answers it. Release methods (by default Unsubscribe, the pair of Subscribe) are reference-counted: a
// tab's Unsubscribe(args) reaches the server only when no other tab still holds Subscribe(args), and a
// departing tab's holds are released the same way.

/** Methods whose call is undone by another one, counted per argument list: {holdMethod: releaseMethod}. */
export const RELEASES = { Subscribe: "Unsubscribe" };

/** How often (ms) a host pings its tabs. */
export const BEAT = 10000;

/** A tab that has not answered for this long (ms) is treated as gone. */
export const EVICT_AFTER = 60000;

// What a tab sends, by its `t` (a table: the build renames private members, so no names built from strings).
const RECEIVE = {
  pong: () => {},
  bye: (host, record) => host.leave(record.tab),
  on: (host, record, m) => host._on(record, m),
  off: (host, record, m) => host._off(record, m),
  invoke: (host, record, m) => host._invoke(record, m),
  send: (host, record, m) => host._send(record, m),
  stream: (host, record, m) => host._stream(record, m),
  cancel: (host, record, m) => host._cancel(record, m),
  answer: (host, record, m) => host._answer(record, m),
};

const lower = (name) => String(name).toLowerCase();

export class Host {
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
    this.tabs = new Map();
    this._releases = new Map(Object.entries(releases).map(([hold, release]) => [lower(hold), release]));
    this._held = new Map();
    this._names = new Map();
    this._answers = new Map();
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
    const record = this.tabs.get(tab) || { tab, names: new Set(), streams: new Map(), holds: new Map() };
    record.seen = this.now();
    this.tabs.set(tab, record);
    names.forEach((name) => this._on(record, { name }));
    for (const [target, args] of holds) {
      const had = this._held.has(this._key(target, args));
      if (this._hold(record, target, args) && join && !had) this.hub.send(target, ...args).catch(() => {});
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
  takeOver(url, options, tabs, adopt) {
    this._create(url, options);
    for (const [tab, names, holds] of tabs) this._restore(tab, names, holds, false);
    adopt(this.hub);
  }

  _create(url, options) {
    this.url = url;
    this.options = options;
    const hub = (this.hub = new this.HubConnection(url, { ...options, env: this.env, shared: false }));
    this.onhub?.(hub);
    const event = (kind) => (value) => this.hub === hub && this._all({ t: "event", kind, value: kind === "attempt" ? value : value && String(value.message || value) });
    for (const kind of ["reconnecting", "reconnected", "close", "attempt"]) hub[`on${kind}`](event(kind));
    // A reconnect that had to start a new connection (the old one was gone): the tabs' groups are joined again.
    let before;
    hub.onreconnecting(() => (before = hub.connectionId));
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
    for (const [key, { target, args }] of this._held) if (key && hub === this.hub) hub.send(target, ...args).catch(() => {});
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
      if (!tabs.length) return undefined;
      const id = this._nextAnswer++;
      const answer = new Promise((resolve, reject) => this._answers.set(id, { tab: tabs[0].tab, resolve, reject }));
      tabs.forEach((record, i) => this.post(record.tab, { t: "call", name: key, args, id: i ? undefined : id }));
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
    this._call(() => this.hub.send(target, ...args)).catch(() => {});
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
    const shared = this._held.get(key);
    if (!hold || !shared || --shared.count) return;
    this._held.delete(key);
    if (!record && this.hub?.state === "Connected") this.hub.send(hold.release, ...hold.args).catch(() => {});
  }
}
