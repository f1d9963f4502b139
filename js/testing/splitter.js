// A record splitter over the JSON protocol's `records`, for tests that look at raw records.
import { records } from "../src/protocol.js";

export class RecordSplitter {
  constructor() {
    this.state = {};
  }

  /** The records completed by `text`. */
  push(text) {
    return records(text, this.state);
  }

  /** The unterminated tail kept for the next push. */
  get rest() {
    return this.state.rest ?? "";
  }
}
