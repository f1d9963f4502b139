// Every module the tests import from src/, as one entry: testing/minified.mjs builds it with the IIFE's
// minifier settings, and the tests then run against that build instead of the source.
export * from "../src/index.js";
export { Poster } from "../src/transports/poster.js";
export { Transport } from "../src/transports/base.js";
export { failure } from "../src/errors.js";
export { fetchInit } from "../src/http.js";
export { records, handshake, handshakeResponse, join } from "../src/protocol.js";
export { MessagePackHubProtocol, encode, decode, concat } from "../src/msgpack.js";
export { traced } from "../src/trace.js";
export { FINAL, JobProgress, JobWatch } from "../src/job.js";
export { Host, SharedHubConnection, EVICT_AFTER, RELEASES, BEAT, shared, withShared } from "../src/shared/index.js";
