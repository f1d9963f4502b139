// The priority order of the transports. Nothing else encodes it.
import { WebSockets } from "./websockets.js";
import { ServerSentEvents } from "./sse.js";
import { ForeverFrame } from "./foreverframe.js";
import { LongPolling } from "./longpolling.js";

export { WebSockets, ServerSentEvents, ForeverFrame, LongPolling };

/** All transports, best first. */
export const TRANSPORTS = [WebSockets, ServerSentEvents, ForeverFrame, LongPolling];

/**
 * The transports to try, in order: the server's list, or the `requested` names restricted to what
 * the server offers. Each entry is `{name, T, skip}`, `skip` saying why it cannot be tried ("" if it can).
 * A transport must carry `format` ("Text" or "Binary": the hub protocol's transfer format).
 */
export function plan(available, requested, env, format) {
  const offered = new Map(available.map((entry) => [entry.transport, entry]));
  return (requested || available.map((entry) => entry.transport)).map((name) => {
    const T = TRANSPORTS.find((candidate) => candidate.transportName === name);
    const offer = offered.get(name);
    let skip = "";
    if (!offer) skip = "not offered by the server";
    else if (!T) skip = "unknown to this client";
    else if (!(offer.transferFormats || ["Text"]).includes(format)) skip = `no ${format} transfer format`;
    else if (!T.supported(env)) skip = "not supported here";
    return { name, T, skip };
  });
}
