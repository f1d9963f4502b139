// The priority order of the transports. Nothing else encodes it.
import { WebSockets } from "./websockets.js";
import { ServerSentEvents } from "./sse.js";
import { ForeverFrame } from "./foreverframe.js";
import { LongPolling } from "./longpolling.js";

export { WebSockets, ServerSentEvents, ForeverFrame, LongPolling };

/** All transports, best first. */
export const TRANSPORTS = [WebSockets, ServerSentEvents, ForeverFrame, LongPolling];
