// The page's pure helpers for reconnecting, kept apart so they can be tested without a
// browser (tests/unit/js/).

export const FIRST_DELAY_MS = 500;
export const MAX_DELAY_MS = 10_000;

// How long to wait before reconnection try `attempt` (0, 1, ...): 0.5 s doubling to at
// most 10 s, less up to 30 % at random so that many tabs dropped at once (a server
// restart) do not all come back in the same instant.
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(FIRST_DELAY_MS * 2 ** attempt, MAX_DELAY_MS);
  return Math.round(base * (1 - 0.3 * random()));
}

// A text's length as the server counts `replyStream(after:)`: in Unicode code points.
// `text.length` counts UTF-16 units, so an emoji would count twice and the rest of a
// reply would start a character late.
export function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}
