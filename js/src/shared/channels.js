// The channels from a tab to the host of its shared connection: a SharedWorker's port, or, where there is no
// SharedWorker, a BroadcastChannel to whichever tab holds the Web Lock of the hub (the leader). `shared()`
// picks one and builds the tab's SharedHubConnection; with neither, the tab connects on its own.
import { Host, BEAT } from "./host.js";
import { adopt, snapshot, watch } from "./handover.js";
import { SharedHubConnection } from "./tab.js";

/** A channel to the SharedWorker at `workerUrl` (one per browser and script URL). */
export function workerChannel(workerUrl, g) {
  const port = new g.SharedWorker(workerUrl, { name: "gateway" }).port;
  const channel = { post: (message) => port.postMessage(message), onmessage: null };
  port.onmessage = ({ data }) => channel.onmessage?.(data);
  port.start();
  return channel;
}

/**
 * A channel to the leader tab of `url`. Every tab asks for the hub's Web Lock; the one that holds it hosts
 * the connection and the others reach it over a BroadcastChannel. After every message in or out, the leader
 * publishes what the next leader needs (see handover.js). The browser releases the lock when the leader's
 * page goes away; the next tab in the lock's queue then hosts: it resumes the same connection for the same
 * tabs, and every tab says hello to it. `TRANSPORTS` are the core's transport classes; `env`, the tab's
 * `env` option, goes to the connection it hosts.
 */
export function leaderChannel(url, HubConnection, TRANSPORTS, g, env) {
  const me = Math.random().toString(36).slice(2);
  const name = `gateway:${url}`;
  const broadcast = new g.BroadcastChannel(name);
  const channel = { onmessage: null, onlead: null };
  let host = null;
  let last = null;
  const local = (message) => queueMicrotask(() => channel.onmessage?.(message));
  const publish = () => {
    const state = host.hub && snapshot(host.hub);
    if (state) broadcast.postMessage({ handover: { hub: host.url, config: host.options, leader: me, tabs: host.tabsState(), state } });
  };
  const receive = (tab, message) => {
    host.receive(tab, message);
    publish();
  };
  channel.post = (message) => (host ? receive(me, message) : broadcast.postMessage({ from: me, m: message }));
  broadcast.onmessage = ({ data }) => {
    if (data.handover) last = data.handover;
    else if (data.lead) channel.onlead?.();
    else if (host && data.from) receive(data.from, data.m);
    else if (data.to === me) channel.onmessage?.(data.m);
  };
  g.navigator.locks.request(name, () => {
    host = new Host(HubConnection, (tab, message) => (tab === me ? local(message) : broadcast.postMessage({ to: tab, m: message })), {
      onhub: (hub) => watch(hub, publish),
      env,
    });
    if (last) takeOver(host, last, TRANSPORTS);
    g.setInterval(() => host.beat(), BEAT);
    broadcast.postMessage({ lead: true });
    channel.onlead?.();
    return new Promise(() => {});
  });
  return channel;
}

// The old leader's tab goes last: it is gone, and the first tab of a name answers client results; the
// heartbeat forgets it (and releases what it alone held) once the connection is back.
function takeOver(host, { hub, config, leader, tabs, state }, TRANSPORTS) {
  const ordered = [...tabs.filter(([tab]) => tab !== leader), ...tabs.filter(([tab]) => tab === leader)];
  host.takeOver(hub, config, ordered, (adopted) => adopt(adopted, state, TRANSPORTS));
}

/** The HubConnection of a page in shared mode (`HubConnection` is the core's class). */
export function shared(HubConnection, url, options, g = globalThis, TRANSPORTS = g.Gateway?.TRANSPORTS) {
  const absolute = new URL(url, g.location.href).href;
  // ForeverFrame needs a document: a worker cannot run it, a leader tab can.
  const pageOnly = options.transports?.every((name) => name === "ForeverFrame");
  let channel;
  if (g.SharedWorker && !pageOnly) {
    channel = workerChannel(options.workerUrl || absolute.split("?")[0].replace(/\/?$/, "/client.worker.js"), g);
  } else if (g.navigator?.locks && g.BroadcastChannel) {
    channel = leaderChannel(absolute, HubConnection, TRANSPORTS, g, options.env);
  } else {
    return new HubConnection(url, { ...options, shared: false });
  }
  const tab = new SharedHubConnection(absolute, options, channel);
  channel.onlead = () => tab.rejoin();
  g.addEventListener?.("pagehide", () => tab.state !== "Disconnected" && channel.post({ t: "bye" }));
  g.addEventListener?.("pageshow", (event) => event.persisted && tab.rejoin());
  return tab;
}

/** A subclass of the core's `HubConnection` whose constructor honours `{shared: true}` (`TRANSPORTS`: the core's). */
export function withShared(HubConnection, TRANSPORTS) {
  return class extends HubConnection {
    constructor(url, options = {}) {
      if (options.shared) return shared(HubConnection, url, options, globalThis, TRANSPORTS);
      super(url, options);
    }
  };
}
