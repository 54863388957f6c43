// The model pickers: the sidebar's (the model a new conversation is created with) and the
// header's (the open conversation's; changing it calls updateConversation(model)). Both
// list the `models` query's answer, asked again whenever a picker gets the focus, so a
// model added to the server shows up without a reload. "" is the server's default (null).

import { gql } from "./api.js";
import { Q_MODELS } from "./documents.js";

export class ModelPickers {
  // newSelect, openSelect: the two <select>s; onError(err).
  constructor(newSelect, openSelect, { onError }) {
    this.newSelect = newSelect;
    this.openSelect = openSelect;
    this.onError = onError;
    this.models = [];
    for (const select of [newSelect, openSelect]) {
      select.addEventListener("focus", () => this.load());
    }
  }

  async load() {
    try {
      this.models = (await gql(Q_MODELS)).models;
    } catch (err) {
      this.onError(err);
      return;
    }
    // Each picker keeps what it shows: a choice being made is not undone by the answer.
    this.fill(this.newSelect, this.newSelect.value || null);
    this.fill(this.openSelect, this.openSelect.value || null);
  }

  // The model that answers a conversation whose model is `chosen` (null: the default).
  answering(chosen) {
    return chosen ?? this.models.find((model) => model.default)?.name ?? null;
  }

  // Shows `model` (null: the default) as the open conversation's.
  show(model) {
    this.fill(this.openSelect, model);
  }

  // The new-conversation picker's choice (null: the default), then back to the default.
  takeNew() {
    const chosen = this.newSelect.value || null;
    this.newSelect.value = "";
    return chosen;
  }

  fill(select, selected) {
    const fallback = this.models.find((model) => model.default)?.name;
    const options = [option("", fallback ? `Server default (${fallback})` : "Server default")];
    for (const model of this.models) {
      const state = model.loading ? " · loading" : model.loaded ? " · loaded" : "";
      options.push(option(model.name, `${model.name}${state}`));
    }
    // A conversation's model the server no longer lists: shown, so the page does not lie.
    if (selected && !this.models.some((model) => model.name === selected)) {
      options.push(option(selected, `${selected} (unavailable)`));
    }
    select.replaceChildren(...options);
    select.value = selected ?? "";
  }
}

function option(value, text) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}
