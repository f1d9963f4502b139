// ForeverFrame: a hidden iframe streams <script> chunks that postMessage records to this page;
// POST base?id=T upstream. The frame cannot report a failed load: the start timeout catches it.
import { Transport, failure } from "./base.js";
import { Poster } from "./poster.js";

const frameId = () => "f" + Math.random().toString(36).slice(2, 12);

export class ForeverFrame extends Transport {
  static supported(env) {
    return Boolean(env.document && env.window && env.window.postMessage && env.location && env.fetch);
  }

  async connect(url) {
    const { document, window, location } = this.env;
    this.poster = new Poster(this.env, this.options, url, (error) => this._closed(error));
    this.origin = new URL(url).origin;
    this.id = frameId();
    this.listener = (event) => this._message(event);
    window.addEventListener("message", this.listener);
    await loaded(document, window);
    if (this.stopped) return;
    const frame = (this.frame = document.createElement("iframe"));
    frame.hidden = true;
    frame.src = `${url}&transport=ForeverFrame&origin=${encodeURIComponent(location.origin)}&frame=${this.id}`;
    document.body.appendChild(frame);
  }

  send(data) {
    this.poster.send(data);
  }

  _message(event) {
    const data = event.data;
    const ours = this.frame && event.source === this.frame.contentWindow && event.origin === this.origin;
    if (!ours || !data || data.gw !== this.id) return;
    if (data.d === null) this._closed(failure("end of stream"));
    else if (typeof data.d === "string") this.onreceive(data.d);
  }

  _end() {
    this.poster?.stop();
    this.env.window.removeEventListener("message", this.listener);
    const frame = this.frame;
    this.frame = null;
    if (frame) {
      frame.src = "about:blank";
      frame.remove();
    }
  }
}
ForeverFrame.transportName = "ForeverFrame";

/** Waits for the page's load event: a frame added before it would hold the page "loading" forever. */
function loaded(document, window) {
  if (document.readyState === "complete") return Promise.resolve();
  return new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
}
