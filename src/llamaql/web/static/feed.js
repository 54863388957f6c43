// The page's live feed: one `events` subscription over the page's socket. It keeps the
// last event's cursor and, when the socket comes back, asks for what it missed with
// `since:` (the server answers EventsReset when that is too long ago: refetch).

import { S_EVENTS } from "./documents.js";

export class EventFeed {
  constructor(live, onEvent) {
    this.live = live;
    this.onEvent = onEvent;
    this.cursor = null;
    this.handle = null;
  }

  // From now on (a new user), or from the last cursor (`keep`: the same user again).
  start({ keep = false } = {}) {
    this.stop();
    if (!keep) this.cursor = null;
    const resume = () => ({ query: S_EVENTS, variables: { since: this.cursor } });
    const handlers = {
      next: (data) => {
        const event = data.events;
        this.cursor = event.cursor;
        this.onEvent(event);
      },
      // Not an error for the user to act on: the page works without the feed.
      error: (code, reason) => {
        this.handle = null;
        console.warn(`llamaql: the live feed stopped (${code}: ${reason})`);
      },
      complete: () => {
        this.handle = null;
      },
    };
    this.handle = this.live.subscribe(S_EVENTS, { since: this.cursor }, handlers, resume);
  }

  running() {
    return this.handle !== null;
  }

  stop() {
    this.handle?.close();
    this.handle = null;
  }
}

// What the page does about one event. `view`: the open conversation's id (or null),
// whether the page follows a reply there, and the status of a message shown there
// (null when it is not on the page). Events about what this page did itself ask for
// nothing beyond a list refresh: it already shows them.
// Returns { list, reopen, close, search }: refresh the list, reload the open
// conversation (which follows a generating reply), close it, refresh search results.
export function eventActions(event, { openId, following, shownStatus }) {
  const open = event.conversationId !== undefined && event.conversationId === openId;
  const idle = open && !following;
  const actions = { list: false, reopen: false, close: false, search: false };
  switch (event.__typename) {
    case "EventsReset":
      // The feed's start (missed: false; every later change comes as an event, so the
      // list is loaded after it), or too much was missed (true): refetch what is shown.
      actions.list = true;
      actions.reopen = event.missed && openId !== null;
      break;
    case "ConversationDeleted":
      Object.assign(actions, { list: true, search: true, close: open });
      break;
    case "ConversationCreated":
    case "ConversationUpdated":
      actions.list = true;
      break;
    case "ReplyQueued":
    case "ReplyStarted":
      // A reply sent elsewhere: show its message and follow it.
      actions.list = true;
      actions.reopen = idle && shownStatus(event.messageId) === null;
      break;
    case "ReplyFinished":
      actions.list = true;
      actions.reopen = idle && shownStatus(event.messageId) !== event.status;
      break;
    case "BranchSelected":
      // Its messageId is the branch's new leaf: shown already when this page chose it.
      actions.reopen = idle && shownStatus(event.messageId) === null;
      break;
  }
  return actions;
}
