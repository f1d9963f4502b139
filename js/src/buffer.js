// Stateful reconnect bookkeeping, pure: sequence ids both ways, unacked records, duplicates.
import { isTrackable, write, SEQUENCE } from "./protocol.js";
import { failure } from "./errors.js";

/**
 * Counts the trackable messages sent and received (ids start at 1). Keeps sent records until the
 * peer acks them, drops received duplicates, and builds the Sequence + replay sent on a resume.
 * Disabled (connection without stateful reconnect), it keeps nothing and drops nothing.
 */
export class MessageBuffer {
  constructor(enabled) {
    this.enabled = enabled;
    this.sent = 0;
    this.unacked = [];
    this.next = 1;
    this.latest = 0;
  }

  /** Records an outgoing message. */
  sending(message, record) {
    if (this.enabled && isTrackable(message)) this.unacked.push([++this.sent, record]);
  }

  /** The peer acked every id up to `id`. */
  ack(id) {
    while (this.unacked.length && this.unacked[0][0] <= id) this.unacked.shift();
  }

  /** Returns false for a trackable message already processed. */
  received(message) {
    if (!this.enabled || !isTrackable(message)) return true;
    const id = this.next++;
    if (id <= this.latest) return false;
    this.latest = id;
    return true;
  }

  /** The peer's Sequence: its next message has id `id`. */
  sequence(id) {
    if (id > this.latest + 1) throw failure(`Sequence ${id} skips messages: last received was ${this.latest}`);
    this.next = id;
  }

  /** The records sent on a resume: our Sequence (encoded by `encode`), then every unacked record in order. */
  replay(encode = write) {
    const first = this.unacked.length ? this.unacked[0][0] : this.sent + 1;
    return [encode({ type: SEQUENCE, sequenceId: first }), ...this.unacked.map((entry) => entry[1])];
  }
}
