// The IIFE entry of shared mode (load it after client.js): it replaces `Gateway.HubConnection` with a
// subclass for which `{shared: true}` shares one connection among the browser's tabs. Without this entry,
// the core's HubConnection throws on {shared: true}.
import { withShared } from "./shared/channels.js";
import { SharedHubConnection } from "./shared/tab.js";

const Gateway = globalThis.Gateway;
if (!Gateway?.HubConnection) throw new Error("client.shared.js needs client.js, loaded before it");
Gateway.HubConnection = withShared(Gateway.HubConnection, Gateway.TRANSPORTS);
Gateway.SharedHubConnection = SharedHubConnection;
