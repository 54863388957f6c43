// The llamaql chat page: queries and mutations over HTTP POST to /graphql, sendMessage
// over a WebSocket speaking graphql-transport-ws. No framework, no build step.
// Model and user text only ever reaches the page through textContent / append(string).
"use strict";

const STORAGE_KEY = "llamaql.userId";
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE_SIZE = 50;
const ROLE_NAMES = { USER: "You", ASSISTANT: "Model", SYSTEM: "System" };

const MESSAGE_FIELDS =
  "id role text status finishReason createdAt usage { completionTokens tokensPerSecond }";
const Q_CONVERSATIONS = `query Conversations($after: String) {
  conversations(first: ${PAGE_SIZE}, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id title updatedAt } } } }`;
const Q_MESSAGES = `query Messages($id: ID!, $after: String) {
  conversation(id: $id) { id title updatedAt messages(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { ${MESSAGE_FIELDS} } } } } }`;
const M_CREATE = `mutation Create($input: CreateConversationInput) {
  createConversation(input: $input) { id title updatedAt } }`;
const M_RENAME = `mutation Rename($id: ID!, $title: String) {
  updateConversation(id: $id, input: {title: $title}) { id title updatedAt } }`;
const M_DELETE = "mutation Delete($id: ID!) { deleteConversation(id: $id) }";
const M_CANCEL = "mutation Cancel($id: ID!) { cancelGeneration(messageId: $id) }";
const S_SEND = `subscription Send($id: ID!, $text: String!) {
  sendMessage(conversationId: $id, text: $text) {
    __typename
    ... on MessageQueued { assistantMessageId position userMessage { ${MESSAGE_FIELDS} } }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ${MESSAGE_FIELDS} } }
    ... on MessageFailed { code reason retryable assistantMessage { ${MESSAGE_FIELDS} } } } }`;

const $ = (id) => document.getElementById(id);
const state = {
  userId: "",
  conversations: [], // loaded pages, newest activity first
  endCursor: null,
  current: null, // the open conversation: { id, title, updatedAt }
  openToken: 0, // guards against a slow load finishing after another was opened
  stream: null, // the reply in progress: { conversationId, assistantMessageId, handle }
};

// ---- identity ---------------------------------------------------------------------------

function newUuid() {
  if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function storedUserId() {
  let id = null;
  try { id = localStorage.getItem(STORAGE_KEY); } catch { /* storage disabled */ }
  if (id && UUID_RE.test(id)) return id;
  id = newUuid();
  saveUserId(id);
  return id;
}

function saveUserId(id) {
  try { localStorage.setItem(STORAGE_KEY, id); } catch { /* kept for this tab only */ }
}

// ---- GraphQL over HTTP ------------------------------------------------------------------

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-User-ID": state.userId },
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

// ---- graphql-transport-ws: one connection per subscription ------------------------------

function subscribe(query, variables, handlers) {
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

  ws.onopen = () => send({ type: "connection_init", payload: { "X-User-ID": state.userId } });
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
    // Ends the subscription from our side; the server cancels a reply still running.
    close() {
      if (!done && ws.readyState === WebSocket.OPEN) send({ id, type: "complete" });
      finish(handlers.complete);
    },
  };
}

// ---- rendering --------------------------------------------------------------------------

function showError(code, reason) {
  const box = $("error");
  box.textContent = code ? `${code}: ${reason}` : reason;
  box.hidden = false;
}

function showApiError(err) {
  if (err instanceof ApiError) showError(err.code, err.message);
  else showError("ERROR", String(err?.message ?? err));
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text) {
  $("status").textContent = text;
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

function renderConversations(totalCount, hasNextPage) {
  const list = $("conversations");
  list.replaceChildren();
  for (const conversation of state.conversations) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = conversation.title || "Untitled";
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = formatTime(conversation.updatedAt);
    button.append(title, time);
    if (state.current?.id === conversation.id) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => openConversation(conversation));
    item.append(button);
    list.append(item);
  }
  if (totalCount !== undefined) $("total").textContent = `(${totalCount})`;
  if (hasNextPage !== undefined) $("load-more").hidden = !hasNextPage;
}

function messageElement(message) {
  const element = document.createElement("article");
  element.className = `message ${message.role.toLowerCase()}`;
  const who = document.createElement("h3");
  who.className = "who";
  who.textContent = ROLE_NAMES[message.role] ?? message.role;
  const text = document.createElement("div");
  text.className = "text";
  const meta = document.createElement("p");
  meta.className = "meta";
  element.append(who, text, meta);
  updateMessage(element, message);
  return element;
}

function updateMessage(element, message) {
  if (message.id) element.dataset.id = message.id;
  element.dataset.status = message.status;
  element.querySelector(".text").textContent = message.text;
  const facts = [];
  if (message.status && message.status !== "COMPLETE") facts.push(message.status);
  const usual = { COMPLETE: "stop", CANCELLED: "cancelled" }[message.status];
  if (message.finishReason && message.finishReason !== usual) {
    facts.push(`finish: ${message.finishReason}`);
  }
  if (message.usage) {
    const { completionTokens, tokensPerSecond } = message.usage;
    facts.push(`${completionTokens} tokens, ${tokensPerSecond.toFixed(1)} tokens/s`);
  }
  const meta = element.querySelector(".meta");
  meta.textContent = facts.join(" · ");
  meta.hidden = facts.length === 0;
}

function appendMessage(message) {
  const box = $("messages");
  box.querySelector(".empty")?.remove();
  const element = messageElement(message);
  box.append(element);
  scrollToEnd(true);
  return element;
}

function scrollToEnd(force = false) {
  const box = $("messages");
  const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  if (force || nearEnd) box.scrollTop = box.scrollHeight;
}

function showEmpty(text) {
  const note = document.createElement("p");
  note.className = "muted empty";
  note.textContent = text;
  $("messages").replaceChildren(note);
}

function renderHeader() {
  const open = state.current !== null;
  $("conv-title").textContent = open ? state.current.title || "Untitled" : "No conversation open";
  $("rename-form").hidden = !open;
  $("rename-title").value = open ? state.current.title || "" : "";
  updateComposer();
}

function updateComposer() {
  const open = state.current !== null;
  const streaming = state.stream !== null;
  const busyHere = streaming && state.stream.conversationId === state.current?.id;
  $("text").disabled = !open;
  $("send").disabled = !open || streaming;
  $("stop").hidden = !streaming;
  $("stop").disabled = false;
  $("delete").disabled = busyHere;
}

// ---- conversations ----------------------------------------------------------------------

async function loadConversations(more = false) {
  try {
    const data = await gql(Q_CONVERSATIONS, { after: more ? state.endCursor : null });
    const page = data.conversations;
    const nodes = page.edges.map((edge) => edge.node);
    state.conversations = more ? state.conversations.concat(nodes) : nodes;
    state.endCursor = page.pageInfo.endCursor;
    renderConversations(page.totalCount, page.pageInfo.hasNextPage);
  } catch (err) {
    showApiError(err);
  }
}

async function createConversation(title) {
  clearError();
  try {
    const input = title ? { title } : {};
    const created = (await gql(M_CREATE, { input })).createConversation;
    $("new-title").value = "";
    await loadConversations();
    await openConversation(created);
    $("text").focus();
  } catch (err) {
    showApiError(err);
  }
}

async function openConversation(conversation) {
  clearError();
  const token = ++state.openToken;
  state.current = { ...conversation };
  if (state.stream === null) setStatus("");
  renderHeader();
  renderConversations();
  showEmpty("Loading…");
  try {
    const messages = [];
    let after = null;
    for (;;) {
      const found = (await gql(Q_MESSAGES, { id: conversation.id, after })).conversation;
      if (token !== state.openToken) return;
      if (found === null) throw new ApiError("NOT_FOUND", "this conversation no longer exists");
      state.current.title = found.title;
      messages.push(...found.messages.edges.map((edge) => edge.node));
      if (!found.messages.pageInfo.hasNextPage) break;
      after = found.messages.pageInfo.endCursor;
    }
    renderHeader();
    if (messages.length === 0) showEmpty("No messages yet: say something.");
    else $("messages").replaceChildren(...messages.map(messageElement));
    scrollToEnd(true);
  } catch (err) {
    if (token === state.openToken) {
      showEmpty("");
      showApiError(err);
    }
  }
}

async function renameConversation(title) {
  clearError();
  const conversation = state.current;
  try {
    const updated = (await gql(M_RENAME, { id: conversation.id, title: title || null }))
      .updateConversation;
    if (state.current?.id === updated.id) state.current.title = updated.title;
    renderHeader();
    await loadConversations();
  } catch (err) {
    showApiError(err);
  }
}

async function deleteConversation() {
  const conversation = state.current;
  const name = conversation.title || "Untitled";
  if (!confirm(`Delete "${name}" and all its messages?`)) return;
  clearError();
  try {
    await gql(M_DELETE, { id: conversation.id });
    if (state.current?.id === conversation.id) {
      state.current = null;
      state.openToken++;
      renderHeader();
      showEmpty("Conversation deleted.");
    }
    await loadConversations();
  } catch (err) {
    showApiError(err);
  }
}

// ---- sending and streaming --------------------------------------------------------------

function sendMessage() {
  const input = $("text");
  const text = input.value;
  if (!text.trim() || state.current === null || state.stream !== null) return;
  clearError();
  input.value = "";
  const conversationId = state.current.id;
  const mine = appendMessage({ role: "USER", text, status: "COMPLETE" });
  let reply = null;
  let queued = false;
  let ended = false;
  const stream = { conversationId, assistantMessageId: null, handle: null };
  state.stream = stream;
  updateComposer();
  setStatus("Sending…");

  const replyElement = () => {
    if (reply === null) reply = appendMessage({ role: "ASSISTANT", text: "", status: "GENERATING" });
    return reply;
  };
  const end = (status) => {
    ended = true;
    state.stream = null;
    reply?.removeAttribute("aria-busy");
    updateComposer();
    setStatus(status);
    loadConversations();
    if (state.current?.id === conversationId) {
      const listed = state.conversations.find((c) => c.id === conversationId);
      if (listed) state.current.title = listed.title;
    }
  };
  const handlers = {
    next(data) {
      const event = data.sendMessage;
      switch (event.__typename) {
        case "MessageQueued":
          queued = true;
          stream.assistantMessageId = event.assistantMessageId;
          updateMessage(mine, event.userMessage);
          replyElement().setAttribute("aria-busy", "true");
          setStatus(event.position > 0
            ? `Queued: ${event.position} ahead of you`
            : "Generating…");
          break;
        case "TokenDelta":
          replyElement().querySelector(".text").append(event.text);
          setStatus("Generating…");
          scrollToEnd();
          break;
        case "MessageCompleted":
          updateMessage(replyElement(), event.message);
          end(event.message.status === "CANCELLED"
            ? "Stopped: the reply so far is kept (CANCELLED)."
            : "");
          scrollToEnd();
          break;
        case "MessageFailed":
          showError(event.code, event.reason);
          if (event.assistantMessage) updateMessage(replyElement(), event.assistantMessage);
          else refused();
          end(event.retryable ? "Failed; you can try again." : "Failed.");
          break;
      }
      if (ended) stream.handle?.close();
    },
    error(code, reason) {
      showError(code, reason);
      if (!queued) refused();
      end("Failed.");
    },
    complete() {
      if (ended) return;
      end("Stopped.");
      // The stream ended without a final event (we closed it early): show what was stored.
      if (state.current?.id === conversationId) openConversation(state.current);
    },
  };
  // Nothing was stored: take the message off the page and give its text back.
  const refused = () => {
    mine.remove();
    reply?.remove();
    reply = null;
    if (!input.value) input.value = text;
  };
  stream.handle = subscribe(S_SEND, { id: conversationId, text }, handlers);
}

async function stopReply() {
  const stream = state.stream;
  if (stream === null) return;
  $("stop").disabled = true;
  setStatus("Stopping…");
  if (stream.assistantMessageId === null) {
    stream.handle.close(); // closing the stream cancels the reply too
    return;
  }
  try {
    await gql(M_CANCEL, { id: stream.assistantMessageId });
    // MessageCompleted (status CANCELLED) follows on the stream.
  } catch (err) {
    showApiError(err);
    stream.handle.close();
  }
}

// ---- wiring -----------------------------------------------------------------------------

function useUserId(id) {
  state.userId = id;
  $("user-id").value = id;
  state.stream?.handle.close();
  state.current = null;
  state.openToken++;
  state.conversations = [];
  renderHeader();
  showEmpty("Create or pick a conversation to start chatting.");
  loadConversations();
}

function init() {
  $("new-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createConversation($("new-title").value.trim());
  });
  $("load-more").addEventListener("click", () => loadConversations(true));
  $("rename-form").addEventListener("submit", (event) => {
    event.preventDefault();
    renameConversation($("rename-title").value.trim());
  });
  $("delete").addEventListener("click", deleteConversation);
  $("send-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("send-form").requestSubmit();
    }
  });
  $("stop").addEventListener("click", stopReply);
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("user-id").value.trim().toLowerCase();
    if (!UUID_RE.test(id)) {
      showError("BAD_USER_INPUT", "the user id must be a UUID");
      return;
    }
    clearError();
    saveUserId(id);
    useUserId(id);
  });
  $("new-user").addEventListener("click", () => {
    const id = newUuid();
    saveUserId(id);
    useUserId(id);
  });
  useUserId(storedUserId());
}

init();
