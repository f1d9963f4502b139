// The <gateway-job> custom element: one job's state, progress bar and step log, kept live by a JobWatch.
import { JobWatch } from "./job.js";

export { FINAL, JobProgress, JobWatch } from "./job.js";

// Styling: CSS variables (documented in js/README.md) and ::part(head|state|percent|message|cancel|track|bar|error|log|entry).
const STYLE = `:host{display:block;font:var(--gateway-job-font,inherit);color:var(--gateway-job-color,inherit)}
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
const HTML = `<div part=head><span part=state></span><span part=percent></span><span part=message></span>` +
  `<button part=cancel hidden>Cancel</button></div><div part=track role=progressbar aria-valuemin=0 aria-valuemax=100>` +
  `<div part=bar></div></div><div part=error></div><ul part=log></ul>`;

/** The text of one step log entry: "#seq State percent% — message". */
export const entryText = (e) => `#${e.seq} ${e.state} ${e.percent ?? 0}% — ${e.message ?? ""}`;

/**
 * Defines `<gateway-job>` (or `name`) over `HubConnection` (the core client's class); returns the element class.
 * Attributes: job-id, hub (default "/hubs/jobs"), transports (comma-separated, for a connection of its own),
 * cancellable, max-log. Property `connection`: a HubConnection to share instead of opening one.
 */
export function defineGatewayJob(HubConnection, name = "gateway-job", registry = globalThis.customElements) {
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
      return [...(this._watch?.progress.log || [])];
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

    attributeChangedCallback(name, was, now) {
      if (name != "job-id" && was !== now && this._own) this._own.stop().catch(() => {}), (this._own = null); // hub, transports
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
      if (this._own && (this._given || !this.isConnected)) this._own.stop().catch(() => {}), (this._own = null);
      this._reset();
      if (!hub) return;
      this._watch = new JobWatch(hub, id, {
        event: (e) => this._show(e),
        done: (e) => this._fire("done", e),
        error: (error) => this._refused(error),
      }, { maxLog: +this.getAttribute("max-log") || 1000 }).start();
    }

    _owned() {
      if (this._own) return this._own;
      const transports = this.getAttribute("transports");
      const own = (this._own = new HubConnection(this.getAttribute("hub") || "/hubs/jobs", transports ? { transports: transports.split(",") } : {}));
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
