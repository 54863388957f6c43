// How the page talks to /graphql: queries and mutations over HTTP POST, subscriptions
// over a WebSocket speaking graphql-transport-ws (one connection per subscription).
// Both name the user the same way: with session.token set (a LLAMAQL_AUTH=jwt server),
// `Authorization: Bearer <token>` and no X-User-ID; else session.userId as X-User-ID.
// Over HTTP as a header, over WebSocket in the connection_init payload (browsers cannot
// set headers on an upgrade). chat.js sets userId to the id the server answers `viewer`
// with, so behind a proxy that replaces X-User-ID the payload repeats the proxy's id
// instead of contradicting it.

export const session = { userId: "", token: "" };

// The identity entries, for a header set or a connection_init payload alike.
function identity() {
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

// handlers: next(data), error(code, reason), complete(). Exactly one of error/complete
// is called, once. Returns { close() }, which ends the subscription from our side (the
// server then cancels a reply still running).
export function subscribe(query, variables, handlers) {
  const url = new URL("graphql", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, "graphql-transport-ws");
  const id = "1";
  let done = false;
  const send = (message) => ws.send(JSON.stringify(message));
  const finish = (callback) => {
    if (done) return;
    done = true;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    callback();
  };
  const fail = (error) =>
    finish(() => handlers.error(error?.extensions?.code ?? "ERROR", error?.message ?? "failed"));

  ws.onopen = () => send({ type: "connection_init", payload: identity() });
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "connection_ack":
        send({ id, type: "subscribe", payload: { query, variables } });
        break;
      case "ping":
        send({ type: "pong" });
        break;
      case "next":
        if (message.payload.errors?.length) fail(message.payload.errors[0]);
        else if (!done) handlers.next(message.payload.data);
        break;
      case "error":
        fail(Array.isArray(message.payload) ? message.payload[0] : message.payload);
        break;
      case "complete":
        finish(handlers.complete);
        break;
    }
  };
  ws.onclose = (event) => {
    const code = event.code === 4403 ? "UNAUTHENTICATED" : "CONNECTION_CLOSED";
    const reason = event.reason || `the connection closed (code ${event.code})`;
    finish(() => handlers.error(code, reason));
  };
  return {
    close() {
      if (!done && ws.readyState === WebSocket.OPEN) send({ id, type: "complete" });
      finish(handlers.complete);
    },
  };
}
