// The page's one WebSocket (graphql-transport-ws): every subscription of the page (the
// events feed, the reply in progress) runs over it, and it comes back by itself.
//
// A reply belongs to the server, not to this socket. When the socket drops (a laptop
// lid, a network change, a proxy, a server restart) it is opened again with backoff,
// at once when the browser says it is online or visible again, and each operation that
// can go on is subscribed again from where it was: its `resume()` gives the document
// and variables to use (replyStream with `after:` the characters shown, events with
// `since:` the last cursor). One that cannot (a send before its reply had an id) ends
// with CONNECTION_CLOSED.
//
// A socket closed with 4403 (a refused or expired token) is not reopened by itself:
// `onAuthLost(reason)` asks for a new identity, and `restart()` reconnects with it.

import { identity } from "./api.js";
import { backoffDelay } from "./backoff.js";

const PING_TIMEOUT_MS = 5_000;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_STALE = 4000; // ours: a socket that did not answer a ping

export class LiveSocket {
  constructor({ onAuthLost = () => {} } = {}) {
    this.onAuthLost = onAuthLost;
    this.ops = new Map();
    this.ws = null;
    this.acked = false;
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.paused = false; // after a 4403, until restart()
    this.restarting = false;
    this.nextId = 0;
    addEventListener("online", () => this.wake());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.wake();
    });
  }

  // handlers: next(data), error(code, reason), complete(): exactly one of the last two,
  // once. resume(): { query, variables } to go on after a reconnect, or null.
  // Returns { close() }: unsubscribes (what it followed goes on on the server).
  subscribe(query, variables, handlers, resume = () => null) {
    const op = { id: String(++this.nextId), query, variables, handlers, resume, sent: false };
    op.done = false;
    this.ops.set(op.id, op);
    if (this.acked) this.start(op);
    else this.connect();
    return { close: () => this.stop(op) };
  }

  // A new identity (a fresh token): this socket is replaced by one that carries it.
  restart() {
    this.paused = false;
    this.attempt = 0;
    if (this.ws === null) return this.connect();
    this.acked = false; // what subscribes from now on waits for the new socket
    this.restarting = true;
    this.ws.close(1000);
  }

  // Online again, or the tab is visible again: a socket that was down is tried now, and
  // one that looks open is asked for a pong (after a lid was closed it may be dead).
  wake() {
    if (this.paused || this.ops.size === 0) return;
    if (this.ws === null) {
      clearTimeout(this.timer);
      this.attempt = 0;
      this.connect();
    } else if (this.acked && this.pingTimer === null) {
      const ws = this.ws;
      this.send({ type: "ping" });
      this.pingTimer = setTimeout(() => {
        this.pingTimer = null;
        if (this.ws === ws) ws.close(CLOSE_STALE);
      }, PING_TIMEOUT_MS);
    }
  }

  connect() {
    if (this.ws !== null || this.paused || this.ops.size === 0) return;
    clearTimeout(this.timer);
    const url = new URL("graphql", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url, "graphql-transport-ws");
    this.ws = ws;
    ws.onopen = () => this.send({ type: "connection_init", payload: identity() });
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.closed(ws, event);
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  start(op) {
    op.sent = true;
    this.send({ id: op.id, type: "subscribe", payload: { query: op.query, variables: op.variables } });
  }

  stop(op) {
    if (op.done) return;
    if (op.sent && this.acked) this.send({ id: op.id, type: "complete" });
    this.finish(op, () => op.handlers.complete());
  }

  finish(op, callback) {
    if (op.done) return;
    op.done = true;
    this.ops.delete(op.id);
    callback();
  }

  fail(op, error) {
    this.finish(op, () => op.handlers.error(error?.extensions?.code ?? "ERROR", error?.message ?? "failed"));
  }

  receive(message) {
    if (message.type === "connection_ack") {
      this.acked = true;
      this.attempt = 0;
      for (const op of [...this.ops.values()]) this.resubscribe(op);
      return;
    }
    if (message.type === "ping") return this.send({ type: "pong" });
    if (message.type === "pong") {
      clearTimeout(this.pingTimer);
      this.pingTimer = null;
      return;
    }
    const op = this.ops.get(message.id);
    if (op === undefined) return;
    if (message.type === "next") {
      if (message.payload.errors?.length) this.fail(op, message.payload.errors[0]);
      else op.handlers.next(message.payload.data);
    } else if (message.type === "error") {
      this.fail(op, Array.isArray(message.payload) ? message.payload[0] : message.payload);
    } else if (message.type === "complete") {
      this.finish(op, () => op.handlers.complete());
    }
  }

  // After a (re)connection: an operation sent on an earlier socket goes on from where
  // it was, or ends; one not sent yet starts.
  resubscribe(op) {
    if (op.sent) {
      const next = op.resume();
      if (next === null) return this.lost(op);
      op.query = next.query;
      op.variables = next.variables;
    }
    this.start(op);
  }

  lost(op) {
    this.finish(op, () => op.handlers.error("CONNECTION_CLOSED", "the connection was lost"));
  }

  closed(ws, event) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.acked = false;
    clearTimeout(this.pingTimer);
    this.pingTimer = null;
    if (event.code === CLOSE_FORBIDDEN) {
      this.paused = true;
      const reason = event.reason || "the server refused this identity";
      // What never started is refused with it; what was running waits for a new identity.
      for (const op of [...this.ops.values()]) {
        if (!op.sent) this.finish(op, () => op.handlers.error("UNAUTHENTICATED", reason));
        else if (op.resume() === null) this.lost(op);
      }
      this.onAuthLost(reason);
      return;
    }
    for (const op of [...this.ops.values()]) if (op.sent && op.resume() === null) this.lost(op);
    if (this.ops.size === 0) return;
    // Our own restart() reconnects at once; a drop waits a little longer each time.
    const delay = this.restarting ? 0 : backoffDelay(this.attempt++);
    this.restarting = false;
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
