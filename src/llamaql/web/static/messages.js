// One message on the page: an <article> with who wrote it, the text (always as text),
// facts about the reply, and its actions. What the actions do is the page's business:
// chat.js hands them in once with setControls.

export const ROLE_NAMES = { USER: "You", ASSISTANT: "Model", SYSTEM: "System" };

// busy(): a reply is streaming (no versions or edits then); showVersion(messageId);
// regenerate(element); edit(element, text).
let controls = {
  busy: () => true,
  showVersion: () => {},
  regenerate: () => {},
  edit: () => {},
};

export function setControls(given) {
  controls = given;
}

export function button(text, className, onClick, label = null) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  if (label) element.setAttribute("aria-label", label);
  element.addEventListener("click", onClick);
  return element;
}

// An <article> per message: who, text, facts, then its actions: the ‹ 2/3 › switcher
// when it has siblings (other versions), Edit on your messages, Regenerate on replies.
export function messageElement(message) {
  const element = document.createElement("article");
  element.className = `message ${message.role.toLowerCase()}`;
  const who = document.createElement("h3");
  who.className = "who";
  who.textContent = ROLE_NAMES[message.role] ?? message.role;
  // A reply names the model that wrote it (Message.model), beside "Model".
  const model = document.createElement("span");
  model.className = "model-name";
  who.append(" ", model);
  const text = document.createElement("div");
  text.className = "text";
  const meta = document.createElement("p");
  meta.className = "meta";
  const actions = document.createElement("div");
  actions.className = "actions";
  element.append(who, text, meta, actions);
  updateMessage(element, message);
  return element;
}

export function updateMessage(element, message) {
  element.message = message;
  if (message.id) element.dataset.id = message.id;
  element.dataset.status = message.status;
  element.querySelector(".text").textContent = message.text;
  const model = element.querySelector(".model-name");
  model.textContent = message.model ?? "";
  model.hidden = !message.model;
  const facts = [];
  if (message.loading) facts.push("loading model…");
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
  renderActions(element, message);
}

export function renderActions(element, message) {
  const actions = element.querySelector(".actions");
  actions.replaceChildren();
  if (!message.id || message.status === "GENERATING") return;
  // Versions and edits are for the conversation at rest: not while a reply streams.
  const busy = controls.busy();
  const siblings = message.siblingIds ?? [];
  const index = siblings.indexOf(message.id);
  if (siblings.length > 1 && index >= 0) {
    const nav = document.createElement("nav");
    nav.className = "versions";
    nav.setAttribute("aria-label", "Versions");
    const position = document.createElement("span");
    position.className = "position";
    position.textContent = `${index + 1}/${siblings.length}`;
    const previous = button("‹", "quiet prev", () => controls.showVersion(siblings[index - 1]),
      "Previous version");
    const next = button("›", "quiet next", () => controls.showVersion(siblings[index + 1]),
      "Next version");
    previous.disabled = busy || index === 0;
    next.disabled = busy || index === siblings.length - 1;
    nav.append(previous, position, next);
    actions.append(nav);
  }
  const action = message.role === "USER"
    ? button("Edit", "quiet edit", () => startEditing(element))
    : message.role === "ASSISTANT"
      ? button("Regenerate", "quiet regenerate", () => controls.regenerate(element))
      : null;
  if (action !== null) {
    action.disabled = busy;
    actions.append(action);
  }
}

// Edit: a form under your message, its text in a textarea; saving hands it to controls.
function startEditing(element) {
  if (controls.busy() || element.querySelector(".editor")) return;
  const form = document.createElement("form");
  form.className = "editor";
  const input = document.createElement("textarea");
  input.value = element.message.text;
  input.rows = 3;
  input.setAttribute("aria-label", "Edited message");
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save and send";
  const cancel = button("Cancel", "quiet", () => form.remove());
  form.append(input, save, cancel);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    controls.edit(element, input.value);
  });
  element.querySelector(".actions").after(form);
  input.focus();
}
