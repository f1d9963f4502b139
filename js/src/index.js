// The public surface of the gateway browser client.
export { HubConnection, HubConnectionState } from "./hub.js";
export { Connection } from "./connection.js";
export { MessageBuffer } from "./buffer.js";
export { MessageType, RecordSplitter, RS, HANDSHAKE, PING, write, parse, isTrackable } from "./protocol.js";
export { TRANSPORTS, plan, WebSockets, ServerSentEvents, ForeverFrame, LongPolling } from "./transports/index.js";
