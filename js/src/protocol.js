// JSON hub protocol: records are JSON texts terminated by 0x1E.

/** The record separator that ends every record. */
export const RS = "\x1e";

/** Hub message types 1-9. */
export const MessageType = {
  Invocation: 1,
  StreamItem: 2,
  Completion: 3,
  StreamInvocation: 4,
  CancelInvocation: 5,
  Ping: 6,
  Close: 7,
  Ack: 8,
  Sequence: 9,
};

/** Encodes one message as a record. */
export const write = (message) => JSON.stringify(message) + RS;

/** The handshake request the client sends first on a fresh connection. */
export const HANDSHAKE = write({ protocol: "json", version: 1 });

/** A Ping record. */
export const PING = write({ type: MessageType.Ping });

/** Messages counted by stateful reconnect: Invocation .. CancelInvocation. */
export const isTrackable = (message) => message.type >= 1 && message.type <= 5;

/**
 * Splits a stream of text into records. `push(text)` returns the records completed by `text`
 * (without their separator) and keeps the unterminated rest for the next call.
 */
export class RecordSplitter {
  constructor() {
    this.rest = "";
  }

  push(text) {
    const parts = (this.rest + text).split(RS);
    this.rest = parts.pop();
    return parts.filter(Boolean);
  }
}

/** Parses one record; throws an Error naming the record when it is not a JSON object. */
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
