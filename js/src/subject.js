// Subject: a stream of values pushed with next/complete/error to subscribed observers. A client-to-server
// stream is a Subject the application feeds; `HubConnection.stream` returns one the server feeds.

export class Subject {
  /** @param {() => void} [cancel] called when the last subscription is disposed of */
  constructor(cancel) {
    this._observers = [];
    this._cancel = cancel;
  }

  /** Adds `observer` ({next, complete, error}, each optional); `dispose()` removes it. */
  subscribe(observer) {
    this._observers.push(observer);
    return {
      dispose: () => {
        this._observers = this._observers.filter((o) => o !== observer);
        if (!this._observers.length) this._cancel?.();
      },
    };
  }


  next(item) {
    this._each("next", item);
  }

  error(error) {
    this._each("error", error);
  }

  complete() {
    this._each("complete");
  }

  // (dispose makes a new array, so the loop sees the observers there were when it began)
  _each(key, value) {
    for (const observer of this._observers) observer[key]?.(value);
  }
}
