// The SharedWorker script ({base}/client.worker.js): the core client and one Host per hub URL. Each port is
// a tab; the host pings the tabs and forgets those that stop answering.
import { HubConnection } from "./hub.js";
import { Host, BEAT } from "./shared/host.js";

const hosts = new Map();
const post = (port, message) => port.postMessage(message);

globalThis.onconnect = ({ ports: [port] }) => {
  let host = null;
  port.onmessage = ({ data }) => {
    if (data.t === "hello") {
      host = hosts.get(data.hub) || new Host(HubConnection, post);
      hosts.set(data.hub, host);
    }
    host?.receive(port, data);
  };
  port.start();
};

setInterval(() => hosts.forEach((host) => host.beat()), BEAT);
