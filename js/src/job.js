// Job progress with no DOM, for the <gateway-job> element: what a page has applied of one job (the snapshot,
// then live events, each seq once and in order), and the watch that keeps it subscribed over a HubConnection.

/** The states after which a job changes no more. */
export const FINAL = ["Completed", "Failed", "Cancelled"];

/**
 * One job as a page has applied it: `current` (the last event), `log` (the events in seq order, at most
 * `maxLog`), `seq` (the last applied). Live events wait while a snapshot is awaited (`waiting`); a live
 * event past a gap makes it wait again, so that a snapshot fills the gap.
 */
export class JobProgress {
  constructor(jobId, maxLog = 1000) {
    this.jobId = jobId;
    this.maxLog = maxLog;
    this.seq = 0;
    this.current = null;
    this.log = [];
    this.truncated = false;
    this.waiting = true;
    this._held = [];
  }

  /** True once a final state is applied. */
  get done() {
    return !!this.current && FINAL.includes(this.current.state);
  }

  /** Applies a snapshot (its log, then its own fields), then the live events held meanwhile; returns the events applied. */
  snapshot({ log, logTruncated, ...current }) {
    if (logTruncated && !this.seq) this.truncated = true;
    const held = this._held.sort((a, b) => a.seq - b.seq);
    this._held = [];
    this.waiting = false;
    return [...(log || []), current, ...held].filter((event) => this._apply(event));
  }

  /** A live event: returns it applied ([event]), or [] when it is old, another job's, or held. */
  live(event) {
    if (!this._fresh(event)) return [];
    if (!this.waiting && event.seq > this.seq + 1) this.waiting = true; // events are missing: a snapshot has them
    if (this.waiting) {
      this._held.push(event);
      return [];
    }
    return this._apply(event) ? [event] : [];
  }

  _fresh(event) {
    return !!event && event.jobId === this.jobId && typeof event.seq == "number" && event.seq > this.seq;
  }

  _apply(event) {
    if (!this._fresh(event)) return false;
    this.seq = event.seq;
    this.current = event;
    this.log.push(event);
    if (this.log.length > this.maxLog) {
      this.log.shift();
      this.truncated = true;
    }
    return true;
  }
}

// The watches of each HubConnection: one `onreconnected` listener per connection serves them all (a
// HubConnection has no way to remove a listener, so a watch must not leave one behind).
const watching = new WeakMap();

function watchesOf(hub) {
  let watches = watching.get(hub);
  if (!watches) {
    watching.set(hub, (watches = new Set()));
    hub.onreconnected((id) => watches.forEach((watch) => watch._reconnected(id)));
  }
  return watches;
}

/**
 * Keeps a JobProgress subscribed over `hub` (a HubConnection): `Subscribe` once the hub is connected, again after
 * a reconnect that brought a new connection id (a resume keeps the subscription), after missing events, or after
 * `quietMs` with nothing heard while the job runs (a step the server missed, if the last), and `Unsubscribe` once
 * the job is final. `on.event(event)` for every event applied, `on.done(event)` once at the
 * final state, `on.error(error)` when the hub refuses (an unknown job, not allowed).
 */
export class JobWatch {
  constructor(hub, jobId, on = {}, { maxLog = 1000, retryMs = 100, quietMs = 10000, timers = globalThis } = {}) {
    this.hub = hub;
    this.jobId = jobId;
    this.progress = new JobProgress(jobId, maxLog);
    this.connectionId = null;
    this.stopped = false;
    this._on = on;
    this._retryMs = retryMs;
    this._quietMs = quietMs;
    this._timers = timers;
    this._busy = false;
    this._again = false;
    this._turn = 0; // which Subscribe is the latest: a stale one that answers late changes nothing
    this._event = (event) => this._receive(event);
  }

  /** Starts watching: listens to `progress`, subscribes as soon as the hub is connected. */
  start() {
    this.hub.on("progress", this._event);
    watchesOf(this.hub).add(this);
    this._subscribe();
    return this;
  }

  /** Stops watching; unsubscribes unless `unsubscribe` is false or the job is final (then it already did). */
  stop(unsubscribe = true) {
    if (this.stopped) return;
    this.stopped = true;
    this._timers.clearTimeout(this._timer);
    this._timers.clearTimeout(this._quiet);
    this.hub.off("progress", this._event);
    watchesOf(this.hub).delete(this);
    if (unsubscribe && !this.progress.done && this.hub.state === "Connected") this._quietly("Unsubscribe");
  }

  /** Asks the server to cancel the job; resolves whether it accepted. */
  cancel() {
    return this.hub.invoke("Cancel", this.jobId);
  }

  _receive(event) {
    const waiting = this.progress.waiting;
    if (this.stopped) return;
    this._applied(this.progress.live(event));
    if (!waiting && this.progress.waiting) this._subscribe(); // a gap: the snapshot fills it
  }

  // A resume keeps the connection and its groups; a new connection id needs a new subscription.
  _reconnected(id) {
    if (id !== this.connectionId) this._subscribe();
  }

  // `overdue`: the quiet timer fired, so a Subscribe still unanswered is not waited for any longer.
  async _subscribe(overdue = false) {
    if (this.stopped || this.progress.done) return;
    if (this._busy && !overdue) return void (this._again = true);
    if (this.hub.state !== "Connected") return this._retry();
    const turn = ++this._turn;
    this._busy = true;
    this._again = false;
    this.progress.waiting = true;
    this._hush(); // an answer that never comes is asked again after quietMs
    const id = this.hub.connectionId;
    try {
      const snapshot = await this.hub.invoke("Subscribe", this.jobId);
      if (this.stopped || turn !== this._turn) return;
      this.connectionId = id;
      this._applied(this.progress.snapshot(snapshot));
      this._hush();
    } catch (error) {
      // Lost with the connection: the reconnect subscribes again. Otherwise the hub refused.
      if (this.hub.state === "Connected" && this.hub.connectionId === id && !this.stopped && turn === this._turn) {
        this._timers.clearTimeout(this._quiet);
        this._on.error?.(error);
      }
    } finally {
      if (turn === this._turn) this._busy = false;
    }
    if (this._again && turn === this._turn) this._subscribe();
  }

  _retry() {
    this._timers.clearTimeout(this._timer);
    this._timer = this._timers.setTimeout(() => this._subscribe(), this._retryMs);
  }

  // Nothing heard for quietMs while the job runs: subscribe again (what the page has is dropped by seq).
  _hush() {
    this._timers.clearTimeout(this._quiet);
    if (!this.stopped && !this.progress.done && this._quietMs) this._quiet = this._timers.setTimeout(() => this._subscribe(true), this._quietMs);
  }

  _applied(events) {
    if (events.length) this._hush();
    for (const event of events) this._on.event?.(event);
    if (events.length && this.progress.done) {
      if (this.hub.state === "Connected") this._quietly("Unsubscribe");
      this._on.done?.(this.progress.current);
    }
  }

  _quietly(method) {
    this.hub.invoke(method, this.jobId).catch(() => {});
  }
}
