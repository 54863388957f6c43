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
