// The client-to-server half of ServerSentEvents, ForeverFrame and LongPolling: POST url?id=T.
import { failure } from "./base.js";

const RETRY_MS = 100;

/** Options for fetch shared by every HTTP request of a connection. */
export const fetchInit = (options, method, body) => ({
  method,
  body,
  cache: "no-store",
  credentials: options.withCredentials ? "include" : "same-origin",
});

/**
 * Sends records with one POST in flight at a time; data queued meanwhile goes out as one batch in the
 * next POST. A 409 (another POST still in flight on the server) is retried; any other failure
 * goes to `onerror`.
 */
export class Poster {
  constructor(env, options, url, onerror) {
    this.env = env;
    this.options = options;
    this.url = url;
    this.onerror = onerror;
    this.queue = [];
    this.busy = false;
    this.stopped = false;
  }

  send(data) {
    this.queue.push(data);
    if (!this.busy) this._flush();
  }

  stop() {
    this.stopped = true;
    this.queue = [];
  }

  async _flush() {
    this.busy = true;
    let body = "";
    while (!this.stopped && (body || this.queue.length)) {
      body = body || this.queue.splice(0).join("");
      const status = await this._post(body);
      if (status === 409) await new Promise((resolve) => this.env.setTimeout(resolve, RETRY_MS));
      else if (status) return this._fail(status);
      else body = "";
    }
    this.busy = false;
  }

  /** Resolves 0 on success, else the HTTP status, or -1 for a network error. */
  async _post(body) {
    try {
      const response = await this.env.fetch(this.url, fetchInit(this.options, "POST", body));
      return response.ok ? 0 : response.status;
    } catch (e) {
      return -1;
    }
  }

  _fail(status) {
    this.busy = false;
    if (this.stopped) return;
    this.stop();
    this.onerror(status < 0 ? failure("POST failed: network error") : failure(`POST failed: HTTP ${status}`, status));
  }
}
