// Types of the optional MessagePack entry (dist/gateway.msgpack.mjs; the IIFE adds Gateway.MessagePackHubProtocol).
import type { HubProtocol, HubMessage } from "./gateway";

/**
 * The SignalR MessagePack hub protocol ({"protocol":"messagepack","version":1}). Values: null/undefined
 * as nil, booleans, numbers (integers up to 64 bits; 64-bit values come back as Numbers), strings,
 * Uint8Array/ArrayBuffer as bin (Uint8Array back), arrays, plain objects as maps, Date as timestamp.
 */
export declare class MessagePackHubProtocol implements HubProtocol {
  readonly name: "messagepack";
  readonly version: 1;
  readonly transferFormat: "Binary";
  write(message: HubMessage): Uint8Array;
  parse(data: ArrayBuffer | Uint8Array, state?: { rest?: Uint8Array }): HubMessage[];
}

/** One value as MessagePack bytes. */
export declare function encode(value: any): Uint8Array;
/** One MessagePack value that fills `bytes` exactly. */
export declare function decode(bytes: Uint8Array): any;
