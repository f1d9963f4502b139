// What every HTTP request of a connection shares: negotiate, polls and POSTs alike.

/** Options for fetch shared by every HTTP request of a connection. */
export const fetchInit = (options, method, body) => ({
  method,
  body,
  cache: "no-store",
  credentials: options.withCredentials ? "include" : "same-origin",
});
