// What every transport shares: the callbacks and a close that reports once.

const noop = () => {};

/**
 * Base of the four transports. A subclass implements `connect(url)` (resolves once the stream is
 * open), `send(data)` and `_end()` (release resources), and calls `onreceive(text)` for data and
 * `_closed(error)` when the stream drops. `stop()` never calls `onclose`.
 */
export class Transport {
  constructor(env, options) {
    this.env = env;
    this.options = options;
    this.onreceive = noop;
    this.onclose = noop;
    this.stopped = false;
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this._end();
  }

  _closed(error) {
    if (this.stopped) return;
    this.stop();
    this.onclose(error);
  }
}

/** The query a transport adds to its URL when it resumes a connection (none by default). */
Transport.resumeQuery = "";
