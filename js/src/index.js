// The public surface of the gateway browser client.
export { HubConnection, HubConnectionState } from "./hub.js";
export { Subject } from "./subject.js";
export { Connection } from "./connection.js";
export { MessageBuffer } from "./buffer.js";
export { MessageType, JsonHubProtocol, RS, write, parse, isTrackable } from "./protocol.js";
export { TRANSPORTS, plan, WebSockets, ServerSentEvents, ForeverFrame, LongPolling } from "./transports/index.js";
