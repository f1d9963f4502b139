// Shared set-up: a HubConnection wired to a FakeServer and a FakeClock.
import { FakeServer, FakeClock } from "./fakes.js";
import { HubConnection } from "../src/index.js";

export const ALL = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"];

/** Builds a server, a clock and a hub; `serverOptions` go to FakeServer, the rest to HubConnection. */
export function setup({ server: serverOptions, env, ...options } = {}) {
  const server = new FakeServer(serverOptions);
  const clock = new FakeClock();
  const hub = new HubConnection(server.base, { ...options, env: server.env(clock, env) });
  const events = [];
  hub.onattempt((a) => events.push(["attempt", a]));
  hub.onclose((e) => events.push(["close", e]));
  hub.onreconnecting((e) => events.push(["reconnecting", e]));
  hub.onreconnected((id) => events.push(["reconnected", id]));
  return { server, clock, hub, events };
}

/** Starts the hub, letting the clock run `ms` meanwhile; resolves the start's outcome. */
export async function start(hub, clock, ms = 10) {
  const started = hub.start().then(
    () => null,
    (error) => error
  );
  await clock.advance(ms);
  return started;
}
