// LongPolling: GET base?id=T in a loop (200 with records, 200 empty, 204 closed), POST upstream.
import { failure } from "../errors.js";
import { Transport } from "./base.js";
import { fetchInit } from "../http.js";
import { Poster } from "./poster.js";

const RESUME = "&resume=1";

export class LongPolling extends Transport {
  static supported(env) {
    return Boolean(env.fetch);
  }

  /** The first poll answers at once (200 empty, or the replay on a resume); then the loop starts. */
  async connect(url) {
    this._url = url.replace(RESUME, "");
    this._poster = new Poster(this.env, this.options, this._url, (error) => this._closed(error));
    const body = await this._poll(url);
    if (body === null) throw failure("HTTP 204");
    Promise.resolve().then(() => this._loop(body));
  }

  async _loop(body) {
    while (!this.stopped) {
      // An empty 200 is news too: the server is alive (there are no pings on long polling).
      this.onreceive(body);
      try {
        body = await this._poll(this._url);
      } catch (error) {
        return this._closed(error);
      }
      if (body === null) return this._closed(failure("HTTP 204"));
    }
  }

  /** Resolves the body of a 200, or null for a 204; rejects with the status or network failure. */
  async _poll(url) {
    this._abort = new AbortController();
    let response, body;
    try {
      response = await this.env.fetch(url, { ...fetchInit(this.options, "GET"), signal: this._abort.signal });
      body = await (this.binary ? response.arrayBuffer() : response.text());
    } catch (e) {
      throw failure("poll failed: network error");
    }
    if (response.status === 204) return null;
    if (response.status !== 200) throw failure(`HTTP ${response.status}`, response.status);
    return body;
  }

  _end() {
    this._abort?.abort();
  }
}
LongPolling.transportName = "LongPolling";
LongPolling.resumeQuery = RESUME;
