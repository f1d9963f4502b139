// src/job.js
var FINAL = ["Completed", "Failed", "Cancelled"];
var JobProgress = class {
  constructor(jobId, maxLog = 1e3) {
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
    return [...log || [], current, ...held].filter((event) => this._apply(event));
  }
  /** A live event: returns it applied ([event]), or [] when it is old, another job's, or held. */
  live(event) {
    if (!this._fresh(event)) return [];
    if (!this.waiting && event.seq > this.seq + 1) this.waiting = true;
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
};
var watching = /* @__PURE__ */ new WeakMap();
function watchesOf(hub) {
  let watches = watching.get(hub);
  if (!watches) {
    watching.set(hub, watches = /* @__PURE__ */ new Set());
    hub.onreconnected((id) => watches.forEach((watch) => watch._reconnected(id)));
  }
  return watches;
}
var JobWatch = class {
  constructor(hub, jobId, on = {}, { maxLog = 1e3, retryMs = 100, quietMs = 1e4, timers = globalThis } = {}) {
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
    this._turn = 0;
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
    if (!waiting && this.progress.waiting) this._subscribe();
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
    this._hush();
    const id = this.hub.connectionId;
    try {
      const snapshot = await this.hub.invoke("Subscribe", this.jobId);
      if (this.stopped || turn !== this._turn) return;
      this.connectionId = id;
      this._applied(this.progress.snapshot(snapshot));
      this._hush();
    } catch (error) {
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
    this.hub.invoke(method, this.jobId).catch(() => {
    });
  }
};

// src/job-element.js
var STYLE = `:host{display:block;font:var(--gateway-job-font,inherit);color:var(--gateway-job-color,inherit)}
[part=head]{display:flex;gap:.6em;align-items:center;flex-wrap:wrap}
[part=state]{padding:.1em .6em;border-radius:1em;font-weight:600;background:var(--gateway-job-badge,#e8ecf5)}
[part=message]{color:var(--gateway-job-muted,#687085)}
[part=track]{height:var(--gateway-job-height,10px);background:var(--gateway-job-bg,#e8ecf5);border-radius:var(--gateway-job-radius,5px);overflow:hidden;margin:.6em 0}
[part=bar]{height:100%;width:0;background:var(--gateway-job-bar,#2f6fec);transition:width .15s}
:host([state=Completed]) [part=bar]{background:var(--gateway-job-done,#1f9d55)}
:host([state=Failed]) [part=bar],:host([state=Cancelled]) [part=bar]{background:var(--gateway-job-fail,#d64545)}
[part=error]{color:var(--gateway-job-fail,#d64545)}
[part=log]{max-height:var(--gateway-job-log-height,16em);overflow:auto;margin:0;padding:0;list-style:none;font:var(--gateway-job-log-font,12px ui-monospace,monospace)}
[part~=entry]{padding:2px 0;border-bottom:1px dashed var(--gateway-job-line,#e2e5ec)}`;
var HTML = `<div part=head><span part=state></span><span part=percent></span><span part=message></span><button part=cancel hidden>Cancel</button></div><div part=track role=progressbar aria-valuemin=0 aria-valuemax=100><div part=bar></div></div><div part=error></div><ul part=log></ul>`;
var entryText = (e) => `#${e.seq} ${e.state} ${e.percent ?? 0}% \u2014 ${e.message ?? ""}`;
function defineGatewayJob(HubConnection, name = "gateway-job", registry = globalThis.customElements) {
  const known = registry.get(name);
  if (known) return known;
  class GatewayJob extends HTMLElement {
    static get observedAttributes() {
      return ["job-id", "hub", "transports"];
    }
    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${STYLE}</style>${HTML}`;
      this._parts = Object.fromEntries([...root.querySelectorAll("[part]")].map((el) => [el.getAttribute("part"), el]));
      this._parts.cancel.onclick = () => this.cancel();
      this._given = null;
      this._own = null;
      this._watch = null;
    }
    get jobId() {
      return this.getAttribute("job-id");
    }
    set jobId(id) {
      id == null ? this.removeAttribute("job-id") : this.setAttribute("job-id", id);
    }
    /** The HubConnection in use: the one given, else the element's own (opened when a job id is set). */
    get connection() {
      return this._given || this._own;
    }
    set connection(hub) {
      this._given = hub || null;
      this._schedule();
    }
    /** The last event applied (null before the snapshot), and its fields. */
    get current() {
      return this._watch?.progress.current || null;
    }
    get state() {
      return this.current?.state || null;
    }
    get percent() {
      return this.current?.percent ?? 0;
    }
    get seq() {
      return this._watch?.progress.seq || 0;
    }
    /** The events applied, in seq order (the step log). */
    get log() {
      return [...this._watch?.progress.log || []];
    }
    get done() {
      return !!this._watch?.progress.done;
    }
    /** Asks the server to cancel the job; resolves whether it accepted. */
    cancel() {
      this._parts.cancel.disabled = true;
      return this._watch ? this._watch.cancel() : Promise.resolve(false);
    }
    connectedCallback() {
      this._schedule();
    }
    disconnectedCallback() {
      this._schedule();
    }
    attributeChangedCallback(name2, was, now) {
      if (name2 != "job-id" && was !== now && this._own) this._own.stop().catch(() => {
      }), this._own = null;
      this._schedule();
    }
    // Changes made in one task (connection, then job id) make one restart.
    _schedule() {
      if (this._queued) return;
      this._queued = true;
      queueMicrotask(() => {
        this._queued = false;
        this._restart();
      });
    }
    _restart() {
      const id = this.isConnected ? this.jobId : null;
      const hub = id ? this._given || this._owned() : null;
      const old = this._watch;
      if (old && old.hub === hub && old.jobId === id) return;
      old?.stop();
      this._watch = null;
      if (this._own && (this._given || !this.isConnected)) this._own.stop().catch(() => {
      }), this._own = null;
      this._reset();
      if (!hub) return;
      this._watch = new JobWatch(hub, id, {
        event: (e) => this._show(e),
        done: (e) => this._fire("done", e),
        error: (error) => this._refused(error)
      }, { maxLog: +this.getAttribute("max-log") || 1e3 }).start();
    }
    _owned() {
      if (this._own) return this._own;
      const transports = this.getAttribute("transports");
      const own = this._own = new HubConnection(this.getAttribute("hub") || "/hubs/jobs", transports ? { transports: transports.split(",") } : {});
      own.start().catch((error) => this._refused(error));
      return own;
    }
    _reset() {
      const p = this._parts;
      this.removeAttribute("state");
      p.state.textContent = p.percent.textContent = p.message.textContent = p.error.textContent = "";
      p.log.replaceChildren();
      p.cancel.hidden = true;
      p.cancel.disabled = false;
      this._bar(0);
    }
    _bar(percent) {
      this._parts.bar.style.width = percent + "%";
      this._parts.track.setAttribute("aria-valuenow", percent);
    }
    _show(e) {
      const p = this._parts;
      this.setAttribute("state", e.state);
      p.state.textContent = e.state;
      p.percent.textContent = (e.percent ?? 0) + "%";
      p.message.textContent = e.message ?? "";
      p.error.textContent = e.error || "";
      p.cancel.hidden = !this.hasAttribute("cancellable") || this._watch.progress.done;
      this._bar(e.percent ?? 0);
      const li = document.createElement("li");
      li.setAttribute("part", `entry ${e.state}`);
      li.dataset.seq = e.seq;
      li.textContent = entryText(e);
      p.log.append(li);
      while (p.log.childElementCount > this._watch.progress.maxLog) p.log.firstElementChild.remove();
      p.log.scrollTop = p.log.scrollHeight;
      this._fire("progress", e);
    }
    _refused(error) {
      this._parts.error.textContent = String(error?.message || error);
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
    }
    _fire(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
    }
  }
  registry.define(name, GatewayJob);
  return GatewayJob;
}
export {
  FINAL,
  JobProgress,
  JobWatch,
  defineGatewayJob,
  entryText
};
