// The page's reconnection helpers (src/llamaql/web/static/backoff.js), run by
// tests/unit/test_page_scripts.py with `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, codePoints, MAX_DELAY_MS } from "../../../src/llamaql/web/static/backoff.js";

test("the delay doubles from half a second to a ceiling", () => {
  const none = () => 0; // no jitter
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, none)),
    [500, 1000, 2000, 4000, 8000, MAX_DELAY_MS, MAX_DELAY_MS]);
});

test("jitter only ever shortens a delay, by at most 30 %", () => {
  assert.equal(backoffDelay(1, () => 0.999999), 700);
  assert.equal(backoffDelay(20, () => 1), 7000);
});

test("code points, as the server counts replyStream's after", () => {
  assert.equal(codePoints(""), 0);
  assert.equal(codePoints("Paris"), 5);
  // One flag is two code points but four UTF-16 units; é precomposed is one.
  assert.equal(codePoints("🇫🇷 é"), 4);
  assert.equal("🇫🇷 é".length, 6);
});
