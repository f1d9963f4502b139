// Every module the tests import from src/, as one entry: testing/minified.mjs builds it with the IIFE's
// minifier settings, and the tests then run against that build instead of the source.
export * from "../src/index.js";
export { Poster, fetchInit } from "../src/transports/poster.js";
export { Transport, failure } from "../src/transports/base.js";
export { records, handshake, handshakeResponse, join } from "../src/protocol.js";
export { MessagePackHubProtocol, encode, decode, concat } from "../src/msgpack.js";
