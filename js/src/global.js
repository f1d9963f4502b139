// The IIFE entry: the global `Gateway` with the names a page uses (the ESM build exports every name; the
// transport classes are in `Gateway.TRANSPORTS`).
import { HubConnection, HubConnectionState, Subject, TRANSPORTS } from "./index.js";

globalThis.Gateway = { ...globalThis.Gateway, HubConnection, HubConnectionState, Subject, TRANSPORTS };
