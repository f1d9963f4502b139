// Handover of a leader tab's connection to the next leader (no SharedWorker: Web Locks + BroadcastChannel).
//
// The leader publishes a snapshot of its connection after every message in or out: the token, the
// negotiate answer, where it is in the transport plan, and the stateful-reconnect ledger (ids received and
// sent, records not yet acked). When its page goes away, the next leader gives a fresh HubConnection that
// state and drops it: the core's own reconnect then resumes the same token, the server replays what the
// tabs missed and our unacked records go out again. The snapshot reads the core's private members: the
// shared IIFE is built with the core's table of renamed members (scripts/build.mjs, `coreRenames`).
// The token goes only over the same-origin BroadcastChannel, never into storage or a log.

/** What the next leader needs to resume `hub`'s connection, or null when it cannot be resumed. */
export function snapshot(hub) {
  const { connection, buffer } = hub;
  if (!connection.token || !connection.stateful) return null;
  return {
    id: connection.connectionId,
    token: connection.token,
    offer: connection._offer,
    plan: connection._plan.map(({ name, skip }) => [name, skip]),
    index: connection._index,
    latest: buffer.latest,
    sent: buffer.sent,
    unacked: buffer.unacked,
  };
}

/** Calls `fn` after each record `hub` sends and each message it receives (to publish a new snapshot). */
export function watch(hub, fn) {
  const connection = hub.connection;
  const { send, onmessage } = connection;
  connection.send = (records) => {
    send.call(connection, records);
    fn();
  };
  connection.onmessage = (message) => {
    onmessage(message);
    fn();
  };
}

/** Turns the new, never started `hub` into the connection of `state` (a snapshot) and resumes it. */
export function adopt(hub, state, TRANSPORTS) {
  const { connection } = hub;
  connection._use({ connectionId: state.id, connectionToken: state.token, useStatefulReconnect: true, availableTransports: state.offer });
  connection._plan = state.plan.map(([name, skip]) => ({ name, skip, T: TRANSPORTS.find((T) => T.transportName === name) }));
  connection._index = state.index;
  const buffer = new hub.buffer.constructor(true);
  Object.assign(buffer, { latest: state.latest, next: state.latest + 1, sent: state.sent, unacked: state.unacked });
  hub.buffer = buffer;
  hub.state = "Connected";
  hub._dropped(new Error("the leader tab left"));
}
