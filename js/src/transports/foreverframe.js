// ForeverFrame: a hidden iframe streams <script> chunks that postMessage records to this page;
// POST base?id=T upstream. The frame cannot report a failed load: the start timeout catches it.
import { failure } from "../errors.js";
import { Transport } from "./base.js";
import { Poster } from "./poster.js";

const frameId = () => "f" + Math.random().toString(36).slice(2, 12);

export class ForeverFrame extends Transport {
  static supported(env) {
    return Boolean(env.document && env.window?.postMessage && env.location && env.fetch);
  }

  async connect(url) {
    const { document, window, location } = this.env;
    this._poster = new Poster(this.env, this.options, url, (error) => this._closed(error), true);
    this._origin = new URL(url).origin;
    this._id = frameId();
    this._listener = (event) => this._message(event);
    window.addEventListener("message", this._listener);
    await loaded(document, window);
    if (this.stopped) return;
    const frame = (this._frame = document.createElement("iframe"));
    frame.hidden = true;
    frame.src = `${url}&transport=ForeverFrame&origin=${encodeURIComponent(location.origin)}&frame=${this._id}`;
    document.body.appendChild(frame);
  }

  _message(event) {
    const data = event.data;
    const ours = this._frame && event.source === this._frame.contentWindow && event.origin === this._origin;
    if (!ours || !data || data.gw !== this._id) return;
    if (data.d === null) this._closed(failure("end of stream"));
    else if (typeof data.d === "string") this.onreceive(data.d);
  }

  _end() {
    this.env.window.removeEventListener("message", this._listener);
    const frame = this._frame;
    this._frame = null;
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
