// WebSockets: ws(s)://base?id=T, hub records in text frames (binary ones under a Binary protocol), both ways.
import { failure } from "../errors.js";
import { Transport } from "./base.js";

export class WebSockets extends Transport {
  static supported(env) {
    return Boolean(env.WebSocket);
  }

  connect(url) {
    return new Promise((resolve, reject) => {
      const socket = (this._socket = new this.env.WebSocket(url.replace(/^http/, "ws")));
      socket.binaryType = "arraybuffer";
      let open = false;
      socket.onopen = () => {
        open = true;
        resolve();
      };
      socket.onmessage = (event) => (this.binary || typeof event.data == "string") && this.onreceive(event.data);
      socket.onclose = (event) => {
        const error = failure(`${event.code}${event.reason ? " " + event.reason : ""}`);
        open ? this._closed(error) : (this.stop(), reject(error));
      };
    });
  }

  send(data) {
    this._socket.send(data);
  }

  _end() {
    const socket = this._socket;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.close();
  }
}
WebSockets.transportName = "WebSockets";
WebSockets.pooled = false;
