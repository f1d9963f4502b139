// Connection: negotiate, walk the transports, confirm each start by data, resume a token, keep alive.
//
// Theory of operation. `start()` negotiates and tries the transports in plan order. An attempt counts
// only when the handshake response comes back through the transport within `startTimeout`; a failed
// attempt is closed, its token DELETEd, and the next transport gets a fresh negotiate. `resume()`
// tries the same token again from the transport in use onwards; the server's Sequence message
// confirms it, and a 404 (the token is gone) ends it with `error.gone`. Once confirmed, the
// transport is adopted: its messages are queued and handed to `onmessage` while `live` is set, and
// its drop, a server silence of `serverTimeout` or an unreadable record calls `ondrop` once.
import { plan } from "./transports/index.js";
import { failure } from "./errors.js";
import { fetchInit } from "./http.js";
import { handshake, handshakeResponse, PING, SEQUENCE } from "./protocol.js";

const noop = () => {};

// Appended to a start that never got an answer over an HTTP stream: the browser's per-host connection limit.
const LIMIT = "; per-host limit? try {shared: true}";

const NEGOTIATE = "negotiate";

const withQuery = (url, query) => url + (url.includes("?") ? "&" : "?") + query;

function negotiateUrl(url) {
  const u = new URL(url);
  u.pathname = u.pathname.replace(/\/?$/, "/negotiate");
  return withQuery(u.href, "negotiateVersion=1&useStatefulReconnect=true&foreverFrame=true");
}

export class Connection {
  /**
   * @param {string} url the hub's base URL, absolute or relative to `env.location`
   * @param {object} options `env`, `transports`, `withCredentials`, `startTimeout`,
   *   `keepAliveInterval`, `serverTimeout` (all filled in by HubConnection)
   */
  constructor(url, options) {
    this.options = options;
    this.env = options.env;
    this.url = new URL(url, this.env.location?.href).href;
    this.onattempt = this.onmessage = this.ondrop = noop;
    this.attempts = [];
    this._plan = [];
    this._index = 0;
    this._epoch = 0;
    this._queue = [];
    this._live = false;
    this.transport = this.token = this.connectionId = null;
    this.stateful = false;
    this._ping = options.protocol.write({ type: PING });
  }

  /** Negotiates and connects over the first transport that confirms the handshake. */
  async start() {
    const { options } = this;
    const epoch = this._begin();
    this._delete();
    // A failed first negotiate is an attempt of its own, recorded as "negotiate" (the plan comes from it).
    if (!(await this._renegotiate(NEGOTIATE, epoch))) throw this._error("connect");
    this._plan = plan(this._offer || [], options.transports, this.env, options.protocol.transferFormat);
    let used = false;
    for (let i = 0; i < this._plan.length; i++) {
      const { name, T, skip } = this._plan[i];
      if (skip) {
        this._record(name, "skipped", skip, null, false);
        continue;
      }
      if (used && !(await this._renegotiate(name, epoch))) continue;
      used = true;
      const error = await this._try(i, T, false, epoch);
      if (!error) return;
      this._delete();
      if (error.hard) break;
    }
    this._delete();
    throw this._error("connect");
  }

  // A fresh token for the next attempt; a failure counts as that transport's attempt.
  async _renegotiate(name, epoch) {
    try {
      this._use(await this._negotiate(epoch));
      return true;
    } catch (error) {
      this._check(epoch);
      this._record(name, "failed", `${name == NEGOTIATE ? "" : "negotiate failed: "}${error.message}`, null, false);
      return false;
    }
  }

  /** Resumes the current token, trying the transport in use first, then the ones after it. */
  async resume() {
    const epoch = this._begin();
    for (let i = this._index; i < this._plan.length; i++) {
      const { name, T, skip } = this._plan[i];
      if (skip) {
        this._record(name, "skipped", skip, null, true);
        continue;
      }
      const error = await this._try(i, T, true, epoch);
      if (!error) return;
      const status = error.status || (await this._probe());
      this._check(epoch);
      if (status === 404) throw Object.assign(this._error("resume"), { gone: true });
    }
    throw this._error("resume");
  }

  /** Writes records on the live transport (dropped silently while there is none). */
  send(records) {
    if (!this.transport) return;
    this.transport.send(records);
    this._sentAt = this.env.now();
    this._pingTimer = this._rearm(this._pingTimer, this.options.keepAliveInterval, () => this.send(this._ping));
  }

  /** Starts handing queued and new messages to `onmessage`. */
  deliver() {
    this._live = true;
    while (this._live && this._queue.length) this.onmessage(this._queue.shift());
  }

  /** Abandons any attempt, closes the transport and DELETEs the token. */
  stop() {
    this._begin();
    this._delete();
    this.connectionId = null;
  }

  /** Reports the live transport as dropped (used for a server Close message that allows reconnect). */
  drop(error) {
    if (!this.transport) return;
    this._release();
    this.ondrop(error);
  }

  // A new generation: whatever an older start or resume was doing is abandoned.
  _begin() {
    this._abort?.(failure("stopped"));
    this._release();
    this.attempts = [];
    this._queue = [];
    return ++this._epoch;
  }

  _check(epoch) {
    if (epoch !== this._epoch) throw failure("The connection was stopped.");
  }

  async _negotiate(epoch) {
    const { env, options } = this;
    let response;
    try {
      // A negotiate the browser queues behind other tabs' streams never answers: it times out like a start.
      const signal = AbortSignal.timeout?.(options.startTimeout);
      response = await env.fetch(negotiateUrl(this.url), { ...fetchInit(options, "POST"), signal });
    } catch (e) {
      // Across origins the browser hides a refusal without CORS headers behind the same error.
      const cross = new URL(this.url).origin !== env.location?.origin;
      throw failure(e.name == "TimeoutError" ? `no answer within ${options.startTimeout} ms${LIMIT}` : cross ? "network error, or this page's origin is not allowed (CORS)" : "network error");
    }
    this._check(epoch);
    if (!response.ok) throw failure(`HTTP ${response.status}`, response.status);
    const body = await response.json();
    this._check(epoch);
    if (body.error) throw Object.assign(failure(body.error), { hard: true });
    return body;
  }

  _use(negotiation) {
    this._offer = negotiation.availableTransports;
    this.connectionId = negotiation.connectionId;
    this.token = negotiation.connectionToken || negotiation.connectionId;
    this.stateful = Boolean(negotiation.useStatefulReconnect);
  }

  // One attempt, recorded. Resolves null when confirmed, else the error; throws when abandoned.
  async _try(index, T, resume, epoch) {
    const started = this.env.now();
    const name = T.transportName;
    try {
      await this._attempt(T, resume);
    } catch (error) {
      this._check(epoch);
      this._record(name, "failed", error.message, started, resume);
      return error;
    }
    this._index = index;
    this._record(name, "connected", "", started, resume);
    return null;
  }

  _record(transport, outcome, reason, started, resume) {
    const ms = started === null ? 0 : this.env.now() - started;
    const attempt = { transport, outcome, reason, ms, resume };
    this.attempts.push(attempt);
    this.onattempt(attempt);
    return attempt;
  }

  _error(verb) {
    const list = this.attempts.map((a) => `${a.transport} ${a.outcome} (${a.reason})`).join("; ");
    return Object.assign(failure(`Unable to ${verb}: ${list || "no transport to try"}`), {
      attempts: this.attempts.slice(),
    });
  }

  // Opens T on the token and waits for the confirming record: the handshake response, or on a
  // resume the server's Sequence message.
  _attempt(T, resume) {
    const { env, options } = this;
    const what = resume ? "Sequence" : "handshake";
    const transport = new T(env, options);
    const state = {};
    let shaken = resume;
    const url = withQuery(this.url, `id=${encodeURIComponent(this.token)}`) + (resume ? T.resumeQuery : "");
    return new Promise((resolve, reject) => {
      let done = false;
      const fail = (error) => {
        if (done) return;
        done = true;
        env.clearTimeout(timer);
        this._abort = null;
        transport.stop();
        reject(error);
      };
      const timer = env.setTimeout(
        () => fail(failure(`no ${what} within ${options.startTimeout} ms${T.pooled ? LIMIT : ""}`)),
        options.startTimeout
      );
      const closed = (error) => fail(failure(`closed before ${what}: ${error.message}`, error.status));
      // The handshake response, or on a resume each message until the server's Sequence.
      const confirm = (message) => {
        if (resume && message.type !== SEQUENCE) return;
        if (!resume && message.error) throw Object.assign(failure(`handshake rejected: ${message.error}`), { hard: true });
        if (!resume && message.type) throw failure("message before handshake");
        done = true;
        env.clearTimeout(timer);
        this._abort = null;
        handle = (next) => this._push(next);
        if (resume) this._queue.push(message);
        this._adopt(transport);
        resolve();
      };
      let handle = confirm;
      // Text, or under a Binary protocol an ArrayBuffer or bytes (the protocol's parse takes both).
      const read = (data) => {
        if (!shaken) {
          const split = handshakeResponse(data, state);
          if (!split) return;
          shaken = true;
          confirm(split[0]);
          data = split[1];
        }
        for (const message of options.protocol.parse(data, state)) handle(message);
      };
      this._abort = fail;
      transport.onclose = closed;
      transport.onreceive = (data) => {
        if (this.transport === transport) this._heard();
        try {
          read(data);
        } catch (error) {
          this.transport === transport ? this.drop(error) : fail(error);
        }
      };
      transport
        .connect(url)
        .then(() => resume || done || transport.send(handshake(options.protocol)))
        .catch(closed);
    });
  }

  _push(message) {
    this._queue.push(message);
    if (this._live) this.deliver();
  }

  _adopt(transport) {
    this.transport = transport;
    this.transportName = transport.constructor.transportName;
    transport.onclose = (error) => this.drop(error);
    this._sentAt = this.env.now();
    this._heard();
    this._pingTimer = this._rearm(this._pingTimer, this.options.keepAliveInterval, () => this.send(this._ping));
  }

  // Something came from the server: push the server timeout back.
  // Timers of a background tab are throttled but network events are not: a keep-alive falling due is sent
  // from here too.
  _heard() {
    const ms = this.options.serverTimeout;
    if (this.env.now() - this._sentAt >= this.options.keepAliveInterval) this.send(this._ping);
    this._serverTimer = this._rearm(this._serverTimer, ms, () => this.drop(failure(`server timeout: nothing received for ${ms} ms`)));
  }

  // Clears `handle` and returns a new timer. Timers are fields read and written by name in the code, never
  // through a string: the minified build renames private members, and `this["_pingTimer"]` would then be
  // a different field from the one `_release` clears.
  _rearm(handle, ms, fn) {
    this.env.clearTimeout(handle);
    return this.env.setTimeout(fn, ms);
  }

  _release() {
    this.env.clearTimeout(this._pingTimer);
    this.env.clearTimeout(this._serverTimer);
    this._live = false;
    const transport = this.transport;
    this.transport = null;
    transport?.stop();
  }

  _delete() {
    if (!this.token) return;
    const url = withQuery(this.url, `id=${encodeURIComponent(this.token)}`);
    this.token = null;
    this.env.fetch(url, fetchInit(this.options, "DELETE")).catch(noop);
  }

  // Asks whether the token still lives, with a harmless Ping POST: resolves its status (0 on failure).
  async _probe() {
    try {
      const url = withQuery(this.url, `id=${encodeURIComponent(this.token)}`);
      return (await this.env.fetch(url, fetchInit(this.options, "POST", this._ping))).status;
    } catch (e) {
      return 0;
    }
  }
}
