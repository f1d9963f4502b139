// Types of the optional trace entry (dist/gateway.trace.mjs; the IIFE adds Gateway.traced).
import type { HubProtocol } from "./gateway";

/**
 * `protocol` (JSON by default) whose invocations carry the headers `headers()` returns, e.g.
 * `{traceparent: "00-<trace id>-<span id>-01"}`: the server's span of the invocation becomes its child.
 */
export declare function traced(
  headers: () => Record<string, string> | null | undefined, protocol?: HubProtocol,
): HubProtocol;
