// Errors every layer of the client raises: the hub, the connection and the transports alike.

/** An Error with an optional HTTP status, so callers can tell a 404 from a network failure. */
export function failure(message, status) {
  const error = new Error(message);
  if (status) error.status = status;
  return error;
}
