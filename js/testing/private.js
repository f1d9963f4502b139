// Private members of client objects, by their source names, whether the tests run against src/ or against
// the minified build (where esbuild renamed them; testing/minified.mjs publishes the renames).

/** The name `name` has in the code under test. */
export function member(name) {
  const renamed = globalThis.gatewayMangled?.[name];
  return typeof renamed === "string" ? renamed : name;
}

/** A private member of `object`, by its source name. */
export function peek(object, name) {
  return object[member(name)];
}
