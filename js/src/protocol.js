// Hub protocols. A protocol is `{name, version, transferFormat, write(message), parse(data, state?)}`;
// the JSON one (records are JSON texts ended by 0x1E) is the default. The handshake is JSON text
// whatever the protocol.

/** The record separator that ends every JSON record (and the handshake). */
export const RS = "\x1e";

// Hub message types 1-9, as constants the bundler inlines.
export const INVOCATION = 1;
export const STREAM_ITEM = 2;
export const COMPLETION = 3;
export const STREAM_INVOCATION = 4;
export const CANCEL_INVOCATION = 5;
export const PING = 6;
export const CLOSE = 7;
export const ACK = 8;
export const SEQUENCE = 9;

/** Hub message types 1-9. */
export const MessageType = {
  Invocation: INVOCATION,
  StreamItem: STREAM_ITEM,
  Completion: COMPLETION,
  StreamInvocation: STREAM_INVOCATION,
  CancelInvocation: CANCEL_INVOCATION,
  Ping: PING,
  Close: CLOSE,
  Ack: ACK,
  Sequence: SEQUENCE,
};

/** Encodes one message as a JSON record. */
export const write = (message) => JSON.stringify(message) + RS;

/** The handshake request for `protocol`. */
export const handshake = ({ name, version }) => write({ protocol: name, version });

/** Messages counted by stateful reconnect: Invocation .. CancelInvocation. */
export const isTrackable = (message) => message.type >= 1 && message.type <= 5;

/** Joins records into one body: strings into a string, byte arrays into a Blob. */
export const join = (parts) => (typeof parts[0] == "string" ? parts.join("") : new Blob(parts));

/** Parses one JSON record; throws an Error naming the record when it is not a JSON object. */
export function parse(record) {
  let message;
  try {
    message = JSON.parse(record);
  } catch (e) {
    message = null;
  }
  if (!message || typeof message !== "object" || Array.isArray(message)) throw new Error(`invalid record: ${record.slice(0, 80)}`);
  return message;
}

/** The records (without their separator) that `text` completes; an unended tail waits in `state.rest`. */
export function records(text, state) {
  const parts = ((state.rest || "") + text).split(RS);
  state.rest = parts.pop();
  return parts.filter(Boolean);
}

/**
 * The JSON hub protocol (the default). `parse(text, state?)` returns the messages that `text` completes;
 * an unended tail waits in `state.rest` for the next call.
 */
export const json = { name: "json", version: 1, transferFormat: "Text", write, parse: (text, state = {}) => records(text, state).map(parse) };

/** A JSON protocol object, for symmetry with `new MessagePackHubProtocol()`. */
export function JsonHubProtocol() {
  return json;
}

/**
 * Splits the handshake response (JSON text up to the first 0x1E, even when binary data follows) off
 * what arrived so far: `[response, rest]`, or null while incomplete. Text waits in `state.rest`; binary
 * data comes in whole frames or bodies, so bytes without the separator hold no handshake response.
 */
export function handshakeResponse(data, state) {
  const text = typeof data == "string";
  data = text ? (state.rest || "") + data : new Uint8Array(data);
  const end = data.indexOf(text ? RS : 30);
  state.rest = end < 0 && text ? data : "";
  const head = data.slice(0, end);
  return end < 0 ? null : [parse(text ? head : new TextDecoder().decode(head)), data.slice(end + 1)];
}
