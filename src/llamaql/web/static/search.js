// Search in the sidebar: the user's own messages and titles (the search query), asked
// as they type (at most once per pause). A hit opens its conversation at the message.
// Snippets arrive in parts with the matched words flagged; each part becomes a text
// node or a <mark> holding a text node, so a snippet can never become markup.

import { gql } from "./api.js";
import { Q_SEARCH } from "./documents.js";
import { ROLE_NAMES } from "./messages.js";

const DEBOUNCE_MS = 300;

export class SearchPanel {
  // elements: { form, input, clear, results, total, hits, more }; onOpen(conversation,
  // messageId or null) opens a hit; onError(err) shows a failure.
  constructor(elements, { onOpen, onError }) {
    this.el = elements;
    this.onOpen = onOpen;
    this.onError = onError;
    this.query = "";
    this.endCursor = null;
    this.asked = 0;
    this.timer = null;
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(elements.input.value);
    });
    elements.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(elements.input.value), DEBOUNCE_MS);
    });
    elements.clear.addEventListener("click", () => this.reset());
    elements.more.addEventListener("click", () => this.run(this.query, true));
  }

  reset() {
    clearTimeout(this.timer);
    this.asked++;
    this.query = "";
    this.el.input.value = "";
    this.el.hits.replaceChildren();
    this.el.results.hidden = true;
    this.el.clear.hidden = true;
  }

  // Asks again for the shown query: titles and messages change under the results.
  refresh() {
    if (this.query) this.run(this.query);
  }

  async run(text, more = false) {
    clearTimeout(this.timer);
    const query = text.trim();
    if (!query) {
      this.reset();
      return;
    }
    const question = ++this.asked;
    try {
      const after = more ? this.endCursor : null;
      const page = (await gql(Q_SEARCH, { query, after })).search;
      if (question !== this.asked) return;
      this.query = query;
      this.endCursor = page.pageInfo.endCursor;
      const items = page.edges.map((edge) => this.hitElement(edge.node));
      if (more) this.el.hits.append(...items);
      else this.el.hits.replaceChildren(...items);
      this.el.total.textContent = `(${page.totalCount})`;
      this.el.more.hidden = !page.pageInfo.hasNextPage;
      this.el.results.hidden = false;
      this.el.clear.hidden = false;
    } catch (err) {
      if (question === this.asked) this.onError(err);
    }
  }

  hitElement(hit) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "hit";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = hit.conversation.title || "Untitled";
    const where = document.createElement("span");
    where.className = "where";
    where.textContent = hit.message ? ROLE_NAMES[hit.message.role] ?? hit.message.role : "Title";
    const snippet = document.createElement("span");
    snippet.className = "snippet";
    for (const part of hit.snippetParts) {
      if (part.highlighted) {
        const mark = document.createElement("mark");
        mark.textContent = part.text;
        snippet.append(mark);
      } else {
        snippet.append(part.text);
      }
    }
    button.append(title, where, snippet);
    button.addEventListener("click", () => this.onOpen(hit.conversation, hit.message?.id ?? null));
    item.append(button);
    return item;
  }
}
