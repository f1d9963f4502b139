// ServerSentEvents: EventSource(base?id=T) downstream, POST base?id=T upstream.
import { failure } from "../errors.js";
import { Transport } from "./base.js";
import { Poster } from "./poster.js";

export class ServerSentEvents extends Transport {
  static supported(env) {
    return Boolean(env.EventSource && env.fetch);
  }

  connect(url) {
    this._poster = new Poster(this.env, this.options, url, (error) => this._closed(error), true);
    return new Promise((resolve, reject) => {
      const source = (this._source = new this.env.EventSource(url, { withCredentials: Boolean(this.options.withCredentials) }));
      let open = false;
      source.onopen = () => {
        open = true;
        resolve();
      };
      source.onmessage = (event) => this.onreceive(event.data);
      // The browser would retry on its own; we close instead and let the connection decide.
      source.onerror = () => {
        const error = failure("EventSource error");
        open ? this._closed(error) : (this.stop(), reject(error));
      };
    });
  }

  _end() {
    const source = this._source;
    if (!source) return;
    source.onopen = source.onmessage = source.onerror = null;
    source.close();
  }
}
ServerSentEvents.transportName = "ServerSentEvents";
