// The llamaql chat page: conversations in the sidebar, the open one's current branch in
// the middle, replies streamed over graphql-transport-ws. No framework, no build step.
// Replies belong to the server: the page follows them (sendMessage, then replyStream
// after a reload, a dropped socket or from another tab), Stop cancels them, and the
// `events` feed shows what other tabs and devices do. socket.js keeps the page's one
// socket alive; feed.js holds the feed.
// Model and user text only ever reaches the page through textContent / append(string).
// A module (so strict): api.js talks to the server, documents.js holds every GraphQL
// document, messages.js draws one message, gauge.js and search.js are the context gauge
// and the search panel, models.js the model pickers.

import { ApiError, gql, session } from "./api.js";
import { codePoints } from "./backoff.js";
import {
  M_CANCEL, M_CREATE, M_DELETE, M_MODEL, M_RENAME, M_SELECT, Q_CONVERSATIONS, Q_MESSAGES,
  Q_VIEWER, S_EDIT, S_REGENERATE, S_REPLY_STREAM, S_SEND,
} from "./documents.js";
import { EventFeed, eventActions } from "./feed.js";
import { ContextGauge } from "./gauge.js";
import { button, messageElement, renderActions, setControls, updateMessage } from "./messages.js";
import { ModelPickers } from "./models.js";
import { SearchPanel } from "./search.js";
import { LiveSocket } from "./socket.js";

const STORAGE_KEY = "llamaql.userId";
// The bearer token is a credential: sessionStorage, so it dies with the tab and is not
// shared with other tabs or kept on disk past the session like localStorage would be.
const TOKEN_KEY = "llamaql.token";
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 6750's b64token: what a bearer token may contain (a JWT always fits). Checked
// here because fetch() throws on a header value with a newline, and to catch a paste
// of something else early.
const TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

const $ = (id) => document.getElementById(id);
const state = {
  conversations: [], // loaded pages, newest activity first
  endCursor: null,
  current: null, // the open conversation: { id, title, updatedAt, model, loaded }
  openToken: 0, // guards against a slow load finishing after another was opened
  identityToken: 0, // likewise for the viewer question of an id the user since replaced
  // The open conversation's reply the page follows:
  // { conversationId, assistantMessageId, handle, detached, cancelWhenQueued }.
  stream: null,
};
// When events come in bursts (a reply's queued, started, finished), one reload each.
const RELOAD_DELAY_MS = 100;
const gauge = new ContextGauge($("gauge"), $("gauge-meter"), $("gauge-text"));

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

function storedToken() {
  let token = "";
  try { token = sessionStorage.getItem(TOKEN_KEY) ?? ""; } catch { /* storage disabled */ }
  return TOKEN_RE.test(token) ? token : "";
}

function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* kept in memory for this page only */ }
}

// Shows whether a token is in use, never the token itself: only its last characters, to
// tell two apart. With a token the server names the user from it, so the id is not edited.
function renderTokenState() {
  const token = session.token;
  $("token").value = "";
  $("token-clear").hidden = !token;
  // A short token (not a JWT) is not shown at all: four characters would be most of it.
  const ending = token.length >= 16 ? ` ending …${token.slice(-4)}` : "";
  $("token-note").textContent = token
    ? `A token${ending} is in use for this tab; it names you instead of the user id.`
    : "Kept for this tab only (sessionStorage) and sent instead of the user id.";
  $("user-id").readOnly = Boolean(token);
  for (const control of $("user-form").querySelectorAll("button")) control.disabled = Boolean(token);
}

// ---- small rendering helpers ------------------------------------------------------------

// What to do about a refused identity: with a token, get a new one; without, a server
// that checks tokens says so in its message (it names the Authorization header).
function identityHint(reason) {
  if (session.token) return "The bearer token was refused: enter a new token in Settings.";
  if (/authorization|bearer/i.test(reason)) return "This server needs a bearer token: enter one in Settings.";
  return "";
}

function showError(code, reason) {
  const box = $("error");
  let text = code ? `${code}: ${reason}` : reason;
  const hint = code === "UNAUTHENTICATED" ? identityHint(String(reason)) : "";
  if (hint) {
    text += ` ${hint}`;
    $("settings").open = true;
  }
  box.textContent = text;
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
    const open = button("", "conversation", () => openConversation(conversation));
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = conversation.title || "Untitled";
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = formatTime(conversation.updatedAt);
    open.append(title, time);
    open.dataset.id = conversation.id;
    if (state.current?.id === conversation.id) open.setAttribute("aria-current", "true");
    item.append(open);
    list.append(item);
  }
  if (totalCount !== undefined) $("total").textContent = `(${totalCount})`;
  if (hasNextPage !== undefined) $("load-more").hidden = !hasNextPage;
}

// ---- messages ---------------------------------------------------------------------------

function renderAllActions() {
  for (const element of $("messages").querySelectorAll(".message")) {
    if (element.message) renderActions(element, element.message);
  }
}

function appendMessage(message) {
  const box = $("messages");
  box.querySelector(".empty")?.remove();
  const element = messageElement(message);
  box.append(element);
  scrollToEnd(true);
  return element;
}

// Takes a message and every one after it off the page; returns them, to put back.
function removeFrom(element) {
  const removed = [];
  for (let node = element; node !== null; node = node.nextElementSibling) removed.push(node);
  for (const node of removed) node.remove();
  return removed;
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
  $("model-form").hidden = !open;
  $("rename-title").value = open ? state.current.title || "" : "";
  if (open) pickers.show(state.current.model ?? null);
  if (!open) gauge.hide();
  updateComposer();
}

function updateComposer() {
  const open = state.current !== null;
  const streaming = state.stream !== null;
  const busyHere = streaming && state.stream.conversationId === state.current?.id;
  $("text").disabled = !open;
  // Not before its messages are on the page: the load would wipe what was just sent.
  $("send").disabled = !open || streaming || !state.current.loaded;
  $("stop").hidden = !streaming;
  $("stop").disabled = false;
  $("delete").disabled = busyHere;
  $("model-picker").disabled = busyHere;
  renderAllActions();
}

function refreshGauge() {
  gauge.now(state.current?.id ?? null, $("text").value);
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
    const model = pickers.takeNew();
    if (model !== null) input.model = model;
    const created = (await gql(M_CREATE, { input })).createConversation;
    $("new-title").value = "";
    await loadConversations();
    await openConversation(created);
    $("text").focus();
  } catch (err) {
    showApiError(err);
  }
}

// Shows the conversation's current branch; resolves to true once it is on the page. A
// reply still generating there is followed from the text stored so far. `quiet`: the
// same conversation again (an event said it changed), without "Loading…" in between.
async function openConversation(conversation, { quiet = false } = {}) {
  if (!quiet) clearError();
  const token = ++state.openToken;
  detachStream();
  state.current = { ...conversation, loaded: false };
  rememberOpen(conversation.id);
  setStatus("");
  renderHeader();
  renderConversations();
  if (!quiet) showEmpty("Loading…");
  try {
    const messages = [];
    let after = null;
    for (;;) {
      const found = (await gql(Q_MESSAGES, { id: conversation.id, after })).conversation;
      if (token !== state.openToken) return false;
      if (found === null) throw new ApiError("NOT_FOUND", "this conversation no longer exists");
      state.current.title = found.title;
      state.current.model = found.model;
      messages.push(...found.messages.edges.map((edge) => edge.node));
      if (!found.messages.pageInfo.hasNextPage) break;
      after = found.messages.pageInfo.endCursor;
    }
    state.current.loaded = true;
    renderHeader();
    if (messages.length === 0) showEmpty("No messages yet: say something.");
    else $("messages").replaceChildren(...messages.map(messageElement));
    scrollToEnd(true);
    refreshGauge();
    const last = $("messages").querySelector(".message:last-child");
    if (last?.message?.role === "ASSISTANT" && last.message.status === "GENERATING") {
      attachReply(last);
    }
    return true;
  } catch (err) {
    if (token === state.openToken) {
      showEmpty("");
      showApiError(err);
    }
    return false;
  }
}

// The open conversation is in the address (#<id>), so a reload opens it again.
function rememberOpen(conversationId) {
  const hash = conversationId ? `#${conversationId}` : "";
  if (location.hash !== hash) history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
}

function closeConversation(note) {
  detachStream();
  state.current = null;
  state.openToken++;
  rememberOpen(null);
  renderHeader();
  renderConversations();
  showEmpty(note);
}

let reloadTimer = null;
let listTimer = null;
let reloadFor = []; // the events that asked for the open conversation to be reloaded

// Decided again when the timer fires, on what the page shows then: by that time this
// page's own open (after a Stop, a version switch or a search hit) may show it already,
// and a reload would only undo what that open did (a highlighted hit, say).
function reloadOpenSoon(event) {
  reloadFor.push(event);
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(function fire() {
    if (state.current !== null && !state.current.loaded) {
      reloadTimer = setTimeout(fire, RELOAD_DELAY_MS); // an open is under way: after it
      return;
    }
    const events = reloadFor;
    reloadFor = [];
    if (events.some((e) => eventActions(e, pageView()).reopen)) {
      openConversation(state.current, { quiet: true });
    }
  }, RELOAD_DELAY_MS);
}

function reloadListSoon() {
  clearTimeout(listTimer);
  listTimer = setTimeout(async () => {
    await loadConversations();
    const listed = state.conversations.find((c) => c.id === state.current?.id);
    if (listed && state.current !== null && listed.title !== state.current.title) {
      state.current.title = listed.title;
      renderHeader();
    }
  }, RELOAD_DELAY_MS);
}

// What another tab or device did (feed.js decides what to redo).
function onViewerEvent(event) {
  const actions = eventActions(event, pageView());
  if (actions.list) reloadListSoon();
  if (actions.search) search.refresh();
  if (actions.close) closeConversation("Conversation deleted.");
  else if (actions.reopen) reloadOpenSoon(event);
}

// What feed.js's eventActions needs to know of the page.
function pageView() {
  return {
    openId: state.current?.id ?? null,
    following: state.stream !== null,
    shownStatus: (messageId) =>
      $("messages").querySelector(`.message[data-id="${CSS.escape(messageId)}"]`)?.dataset.status ?? null,
  };
}

// A search hit: the conversation, at the message (switching to its branch if needed).
async function openAt(conversation, messageId) {
  if (!(await openConversation(conversation)) || messageId === null) return;
  const find = () => $("messages").querySelector(`.message[data-id="${CSS.escape(messageId)}"]`);
  if (find() === null) {
    try {
      await gql(M_SELECT, { id: messageId });
    } catch (err) {
      showApiError(err);
      return;
    }
    if (!(await openConversation(state.current))) return;
  }
  const element = find();
  if (element === null) return;
  for (const old of $("messages").querySelectorAll(".found")) old.classList.remove("found");
  element.classList.add("found");
  element.scrollIntoView({ block: "center" });
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
    search.refresh();
  } catch (err) {
    showApiError(err);
  }
}

// The open conversation's model, from the header's picker ("": the server's default).
async function changeModel(value) {
  const conversation = state.current;
  if (conversation === null) return;
  clearError();
  try {
    const updated = (await gql(M_MODEL, { id: conversation.id, model: value || null }))
      .updateConversation;
    if (state.current?.id === updated.id) {
      state.current.model = updated.model;
      setStatus(`Replies now come from ${pickers.answering(updated.model) ?? "the server's default"}.`);
      refreshGauge(); // another model: another context and tokenizer
    }
  } catch (err) {
    showApiError(err);
    if (state.current?.id === conversation.id) pickers.show(state.current.model ?? null);
  }
}

async function deleteConversation() {
  const conversation = state.current;
  const name = conversation.title || "Untitled";
  if (!confirm(`Delete "${name}" and all its messages?`)) return;
  clearError();
  try {
    await gql(M_DELETE, { id: conversation.id });
    if (state.current?.id === conversation.id) closeConversation("Conversation deleted.");
    await loadConversations();
    search.refresh();
  } catch (err) {
    showApiError(err);
  }
}

// ---- branches ---------------------------------------------------------------------------

async function showVersion(messageId) {
  if (state.stream !== null || state.current === null) return;
  clearError();
  try {
    await gql(M_SELECT, { id: messageId });
  } catch (err) {
    showApiError(err);
    return;
  }
  await openConversation(state.current);
}

// A new reply beside this one; the old one stays a version to flip back to.
function regenerate(element) {
  if (state.stream !== null || state.current === null) return;
  clearError();
  const removed = removeFrom(element);
  streamReply(S_REGENERATE, { id: element.message.id }, {
    mine: null,
    refused: () => $("messages").append(...removed),
  });
}

// A new version of your message beside this one, and its reply.
function editMessage(element, text) {
  if (state.stream !== null || state.current === null) return;
  clearError();
  const removed = removeFrom(element);
  element.querySelector(".editor")?.remove();
  const mine = appendMessage({ role: "USER", text, status: "COMPLETE" });
  streamReply(S_EDIT, { id: element.message.id, text }, {
    mine,
    refused: () => {
      mine.remove();
      $("messages").append(...removed);
    },
  });
}

// ---- sending and streaming --------------------------------------------------------------

function sendMessage() {
  const input = $("text");
  const text = input.value;
  if (!text.trim() || !state.current?.loaded || state.stream !== null) return;
  clearError();
  input.value = "";
  const mine = appendMessage({ role: "USER", text, status: "COMPLETE" });
  streamReply(S_SEND, { id: state.current.id, text }, {
    mine,
    // Nothing was stored: take the message off the page and give its text back.
    refused: () => {
      mine.remove();
      if (!input.value) input.value = text;
    },
  });
}

// Runs one of the ChatEvent subscriptions (send, regenerate, edit, replyStream) for the
// open conversation: `mine` is the page's element for the user message it stores
// (updated from MessageQueued), `refused` undoes the page's changes when nothing was
// stored. `reply` and `messageId`: a reply already on the page, followed from its text.
function streamReply(document_, variables, { mine = null, refused = () => {}, reply: shownReply = null, messageId = null } = {}) {
  const conversationId = state.current.id;
  // Who should answer, shown on the reply until it is stored and names its own model.
  const expected = pickers.answering(state.current.model ?? null);
  let reply = shownReply;
  let queued = messageId !== null;
  let ended = false;
  const stream = {
    conversationId, assistantMessageId: messageId, handle: null, detached: false, cancelWhenQueued: false,
  };
  state.stream = stream;
  updateComposer();
  setStatus(messageId === null ? "Sending…" : "Generating…");

  const replyElement = () => {
    if (reply !== null) return reply;
    const placeholder = { role: "ASSISTANT", text: "", status: "GENERATING" };
    // Another conversation may be open by now: then the reply is kept off the page.
    reply = state.current?.id === conversationId ? appendMessage(placeholder)
      : messageElement(placeholder);
    return reply;
  };
  const undo = () => {
    reply?.remove();
    reply = null;
    if (state.current?.id === conversationId) refused();
  };
  const end = async (status) => {
    ended = true;
    if (state.stream === stream) state.stream = null;
    reply?.removeAttribute("aria-busy");
    updateComposer();
    setStatus(status);
    if (state.current?.id === conversationId) refreshGauge();
    search.refresh();
    pickers.load(); // a model may have loaded (or another unloaded) for this reply
    await loadConversations();
    const listed = state.conversations.find((c) => c.id === conversationId);
    if (listed && state.current?.id === conversationId) {
      state.current.title = listed.title;
      $("conv-title").textContent = listed.title || "Untitled";
    }
  };
  // After a dropped socket: the same reply from what is on the page (none before its id).
  const resume = () => stream.assistantMessageId === null ? null : {
    query: S_REPLY_STREAM,
    variables: { id: stream.assistantMessageId, after: codePoints(reply?.querySelector(".text").textContent ?? "") },
  };
  const handlers = {
    next(data) {
      if (stream.detached) return;
      const event = Object.values(data)[0];
      switch (event.__typename) {
        case "MessageQueued": {
          queued = true;
          stream.assistantMessageId = event.assistantMessageId;
          if (stream.cancelWhenQueued) cancelReply(stream);
          if (mine) updateMessage(mine, event.userMessage);
          const element = replyElement();
          element.setAttribute("aria-busy", "true");
          updateMessage(element, {
            ...(element.message ?? {}),
            id: event.assistantMessageId,
            role: "ASSISTANT",
            text: element.querySelector(".text").textContent,
            status: "GENERATING",
            model: element.message?.model ?? expected,
            loading: event.loading,
          });
          setStatus(event.loading ? `Loading model${expected ? ` ${expected}` : ""}…`
            : event.position > 0 ? `Queued: ${event.position} ahead of you` : "Generating…");
          break;
        }
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
          else undo();
          end(event.retryable ? "Failed; you can try again." : "Failed.");
          break;
      }
      if (ended) stream.handle?.close();
    },
    error(code, reason) {
      if (stream.detached) return;
      showError(code, reason);
      if (code === "CONNECTION_CLOSED") {
        // Lost before the reply had an id: it may have been stored (and be generating),
        // so the page shows what the server has rather than giving the text back.
        end("Connection lost.");
        if (state.current?.id === conversationId) openConversation(state.current, { quiet: true });
        return;
      }
      if (!queued) undo();
      end("Failed.");
    },
    complete() {
      if (ended || stream.detached) return;
      end("Stopped.");
      // The stream ended without a final event: show what was stored.
      if (state.current?.id === conversationId) openConversation(state.current, { quiet: true });
    },
  };
  stream.handle = live.subscribe(document_, variables, handlers, resume);
}

// Follows a reply shown from its stored text (after a reload, or sent by another tab).
function attachReply(element) {
  element.setAttribute("aria-busy", "true");
  const text = element.querySelector(".text").textContent;
  streamReply(S_REPLY_STREAM, { id: element.message.id, after: codePoints(text) }, {
    reply: element,
    messageId: element.message.id,
  });
}

// Stops following the reply (it goes on on the server; another open follows it again).
function detachStream() {
  const stream = state.stream;
  if (stream === null) return;
  stream.detached = true;
  state.stream = null;
  stream.handle?.close();
  updateComposer();
}

// Stop asks the server to stop the reply: closing the stream would not (the reply
// belongs to the server); its text so far is kept (CANCELLED) and the stream ends with it.
async function stopReply() {
  const stream = state.stream;
  if (stream === null) return;
  $("stop").disabled = true;
  setStatus("Stopping…");
  if (stream.assistantMessageId === null) stream.cancelWhenQueued = true; // on MessageQueued
  else await cancelReply(stream);
}

async function cancelReply(stream) {
  try {
    await gql(M_CANCEL, { id: stream.assistantMessageId });
    // MessageCompleted (status CANCELLED) follows on the stream.
  } catch (err) {
    showApiError(err);
  }
}

// ---- wiring -----------------------------------------------------------------------------

// The server, not the page, decides who the page is. Behind an authenticating proxy every
// request (the WebSocket upgrade too) carries the proxy's id whatever the page sends, and
// a connection_init payload naming another id closes the socket (4403). So the page asks
// `viewer` over HTTP, through the proxy, before anything else, and uses the id it gets
// for every later request and socket. Nothing is listed until then, so nothing of the
// id the page kept is shown when the server serves it as someone else.
//
// With a bearer token the server names the user from the token alone: the page sends the
// token and no X-User-ID, and `viewer` tells it the id.
//
// The page's socket carries the identity too: a new one stops what the old one followed
// and reconnects. `reopen`: at page load, the conversation named in the address is
// opened again (a reload mid-reply shows the text so far and follows the rest).
async function useUserId(wanted, { reopen = false } = {}) {
  const token = ++state.identityToken;
  const reopening = reopen ? location.hash.slice(1) : "";
  session.userId = wanted;
  detachStream();
  feed.stop();
  live.restart();
  if (!UUID_RE.test(reopening)) rememberOpen(null);
  state.current = null;
  state.openToken++;
  state.conversations = [];
  search.reset();
  renderConversations(undefined, false);
  $("total").textContent = "";
  $("identity-note").hidden = true;
  renderHeader();
  showEmpty("Create or pick a conversation to start chatting.");
  let served;
  try {
    served = (await gql(Q_VIEWER)).viewer.id;
  } catch (err) {
    if (token !== state.identityToken) return;
    $("user-id").value = wanted;
    showApiError(err);
    return;
  }
  if (token !== state.identityToken) return;
  session.userId = served;
  $("user-id").value = served;
  if (!session.token && served.toLowerCase() !== wanted.toLowerCase()) {
    // Unobtrusive: the kept id stays in the browser for servers that do use it.
    const note = $("identity-note");
    note.textContent = `The server names you ${served}; this browser's own id ${wanted} is not used here.`;
    note.hidden = false;
  }
  clearError();
  feed.start();
  loadConversations();
  pickers.load();
  if (UUID_RE.test(reopening)) openConversation({ id: reopening, title: "" });
}

// A token entered in Settings. When it names the user the page already shows (a fresh
// token after the old one expired), the page stays as it is: the socket reconnects with
// the new token and goes on following the reply and the feed from where they were.
async function useToken() {
  const shownUser = session.userId;
  if (shownUser && state.identityToken > 0) {
    let served = null;
    try {
      served = (await gql(Q_VIEWER)).viewer.id;
    } catch { /* refused: start over below, which says why */ }
    if (served !== null && served === shownUser) {
      clearError();
      live.restart();
      if (!feed.running()) feed.start({ keep: true });
      loadConversations();
      return;
    }
  }
  useUserId(storedUserId());
}

// The socket was closed for its identity (4403: a token that expired or was refused).
// What it followed waits; a new token (Settings) reconnects and carries on.
function onAuthLost(reason) {
  showError("UNAUTHENTICATED", reason);
  if (state.stream !== null) setStatus("Disconnected: the reply goes on on the server.");
}

const live = new LiveSocket({ onAuthLost });
const feed = new EventFeed(live, onViewerEvent);

setControls({
  busy: () => state.stream !== null,
  showVersion,
  regenerate,
  edit: editMessage,
});

const pickers = new ModelPickers($("new-model"), $("model-picker"), { onError: showApiError });

const search = new SearchPanel(
  {
    form: $("search-form"),
    input: $("search-query"),
    clear: $("search-clear"),
    results: $("search-results"),
    total: $("search-total"),
    hits: $("search-hits"),
    more: $("search-more"),
  },
  { onOpen: openAt, onError: showApiError },
);

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
  $("model-form").addEventListener("submit", (event) => event.preventDefault());
  $("model-picker").addEventListener("change", () => changeModel($("model-picker").value));
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
  $("text").addEventListener("input", () => {
    if (state.current !== null) gauge.later(state.current.id, $("text").value);
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
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    // A pasted "Bearer <token>" header value is taken as the token it carries.
    const token = $("token").value.trim().replace(/^bearer\s+/i, "");
    if (!TOKEN_RE.test(token)) {
      $("token").value = "";
      showError("BAD_USER_INPUT", "the bearer token must be one word of letters, digits and -._~+/ (a JWT)");
      return;
    }
    clearError();
    session.token = token;
    saveToken(token);
    renderTokenState();
    useToken();
  });
  $("token-clear").addEventListener("click", () => {
    session.token = "";
    saveToken("");
    renderTokenState();
    clearError();
    useUserId(storedUserId());
  });
  session.token = storedToken();
  renderTokenState();
  useUserId(storedUserId(), { reopen: true });
}

init();
