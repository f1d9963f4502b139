// The client-to-server half of ServerSentEvents, ForeverFrame and LongPolling: POST url?id=T.
import { failure } from "../errors.js";
import { fetchInit } from "../http.js";
import { join } from "../protocol.js";

const RETRY_MS = 100;
const TRIES = 10;
// 409: another POST of this connection is still in flight; 503: the server is moving the connection.
const TRANSIENT = [409, 503];

/**
 * Sends records (text, or bytes under a Binary protocol) with one POST in flight at a time; data queued meanwhile goes out as one batch in the
 * next POST. A 409 or 503 is retried with the same body (up to 10 times, waiting 0.1 s more each
 * time); any other failure goes to `onerror`. With `watch` (a streaming transport), so does an answer
 * saying the server has no stream attached: it saw the stream end though this page did not (a proxy's
 * silent cut), and the connection resumes at once instead of after the server timeout.
 */
export class Poster {
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
}
