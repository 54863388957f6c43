// How the page talks to /graphql: queries and mutations over HTTP POST; subscriptions
// over the page's one WebSocket speaking graphql-transport-ws (socket.js).
// Both name the user the same way: with session.token set (a LLAMAQL_AUTH=jwt server),
// `Authorization: Bearer <token>` and no X-User-ID; else session.userId as X-User-ID.
// Over HTTP as a header, over WebSocket in the connection_init payload (browsers cannot
// set headers on an upgrade). chat.js sets userId to the id the server answers `viewer`
// with, so behind a proxy that replaces X-User-ID the payload repeats the proxy's id
// instead of contradicting it.

export const session = { userId: "", token: "" };

// The identity entries, for a header set or a connection_init payload alike.
export function identity() {
  return session.token ? { Authorization: `Bearer ${session.token}` } : { "X-User-ID": session.userId };
}

export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...identity() },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new ApiError("NETWORK", `cannot reach the server (${err.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP ${response.status}`, "the server did not answer with JSON");
  }
  if (body.errors && body.errors.length) {
    const error = body.errors[0];
    throw new ApiError(error.extensions?.code ?? "ERROR", error.message);
  }
  return body.data;
}
