// A private member of a client object, by its source name, whether the tests run against src/ or against
// the minified build (where esbuild renamed it; testing/minified.mjs publishes the renames).
export function peek(object, name) {
  const renamed = globalThis.gatewayMangled?.[name];
  return object[typeof renamed === "string" ? renamed : name];
}
