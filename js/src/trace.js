// Trace context for invocations: a hub protocol that adds the page's trace headers (W3C `traceparent`, and
// `tracestate` if any) to every invocation it writes, as the SignalR .NET client does since .NET 9; the server
// makes its span a child of the page's. An optional entry: the core stays as small as it is.
//
//   new Gateway.HubConnection(url, {protocol: Gateway.traced(() => ({traceparent: currentTraceparent()}))})
//
// `headers()` is called once per invocation, when it is first written (a replay after a resume sends the same).
import { json, INVOCATION, STREAM_INVOCATION } from "./protocol.js";

/**
 * `protocol` (JSON by default, or a MessagePackHubProtocol) whose invocations carry `headers()`'s result.
 * @param {() => (Record<string, string> | null | undefined)} headers the current trace context as headers
 */
export function traced(headers, protocol = json) {
  const seen = new WeakMap();
  const write = (message) => {
    if (message.type !== INVOCATION && message.type !== STREAM_INVOCATION) return protocol.write(message);
    if (!seen.has(message)) {
      const extra = headers();
      seen.set(message, extra ? { ...message, headers: { ...message.headers, ...extra } } : message);
    }
    return protocol.write(seen.get(message));
  };
  return Object.assign(Object.create(protocol), { write });
}
