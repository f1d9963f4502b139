// The IIFE entry of the MessagePack protocol: adds Gateway.MessagePackHubProtocol to the core's global
// (loaded before or after the core).
import { MessagePackHubProtocol } from "./msgpack.js";

(globalThis.Gateway ||= {}).MessagePackHubProtocol = MessagePackHubProtocol;
