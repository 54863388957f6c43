// What the chat page does about each live-feed event (src/llamaql/web/static/feed.js),
// run by tests/unit/test_page_scripts.py with `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { eventActions } from "../../../src/llamaql/web/static/feed.js";

const OPEN = "c-open";
const nothing = { list: false, reopen: false, close: false, search: false };
const view = (overrides = {}) => ({
  openId: OPEN, following: false, shownStatus: () => null, ...overrides,
});

test("a reply sent elsewhere in the open conversation is shown and followed", () => {
  for (const kind of ["ReplyQueued", "ReplyStarted"]) {
    const event = { __typename: kind, conversationId: OPEN, messageId: "m" };
    assert.deepEqual(eventActions(event, view()), { ...nothing, list: true, reopen: true });
    // This page sent it (it follows it already), or shows it: nothing to reload.
    assert.equal(eventActions(event, view({ following: true })).reopen, false);
    assert.equal(eventActions(event, view({ shownStatus: () => "GENERATING" })).reopen, false);
  }
});

test("a finished reply is reloaded unless the page shows it as it ended", () => {
  const finished = { __typename: "ReplyFinished", conversationId: OPEN, messageId: "m", status: "COMPLETE" };
  assert.equal(eventActions(finished, view({ shownStatus: () => "GENERATING" })).reopen, true);
  assert.equal(eventActions(finished, view({ shownStatus: () => "COMPLETE" })).reopen, false);
  assert.equal(eventActions(finished, view({ openId: "other" })).reopen, false);
  assert.equal(eventActions(finished, view({ openId: "other" })).list, true);
});

test("conversation changes refresh the list; deleting the open one closes it", () => {
  const deleted = { __typename: "ConversationDeleted", conversationId: OPEN };
  assert.deepEqual(eventActions(deleted, view()), { list: true, reopen: false, close: true, search: true });
  assert.equal(eventActions(deleted, view({ openId: "other" })).close, false);
  const renamed = { __typename: "ConversationUpdated", conversationId: OPEN };
  assert.deepEqual(eventActions(renamed, view()), { ...nothing, list: true });
});

test("a reset refetches the open conversation only when events were missed", () => {
  const start = { __typename: "EventsReset", missed: false };
  assert.deepEqual(eventActions(start, view()), { ...nothing, list: true });
  assert.equal(eventActions({ ...start, missed: true }, view()).reopen, true);
  assert.equal(eventActions({ ...start, missed: true }, view({ openId: null })).reopen, false);
});

test("another branch selected elsewhere is shown when the page is idle", () => {
  const selected = { __typename: "BranchSelected", conversationId: OPEN, messageId: "m" };
  assert.equal(eventActions(selected, view()).reopen, true);
  assert.equal(eventActions(selected, view({ following: true })).reopen, false);
  // This page chose it: the new leaf is on the page already.
  assert.equal(eventActions(selected, view({ shownStatus: () => "COMPLETE" })).reopen, false);
});
