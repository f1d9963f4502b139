// What every transport shares: the callbacks and a close that reports once.

const noop = () => {};

/**
 * Base of the four transports. A subclass implements `connect(url)` (resolves once the stream is
 * open) and `_end()` (release resources), sends through its `_poster` (or overrides `send(data)`), and
 * calls `onreceive(text)` for data and
 * `_closed(error)` when the stream drops. `stop()` never calls `onclose`. `binary` is set under a
 * Binary hub protocol: data is then an ArrayBuffer or Uint8Array (the handshake response may be text).
 */
export class Transport {
  constructor(env, options) {
    this.env = env;
    this.options = options;
    this.onreceive = noop;
    this.onclose = noop;
    this.stopped = false;
    this.binary = options.protocol?.transferFormat == "Binary";
  }

  send(data) {
    this._poster.send(data);
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this._poster?.stop();
    this._end();
  }

  _closed(error) {
    if (this.stopped) return;
    this.stop();
    this.onclose(error);
  }
}

/** True when the transport holds one of the browser's few HTTP connections per host (WebSockets do not). */
Transport.pooled = true;

/** The query a transport adds to its URL when it resumes a connection (none by default). */
Transport.resumeQuery = "";
