// The context gauge under the composer: how much of the model's context the open
// conversation, plus the text being typed, would take (the contextUsage query, the same
// prompt preparation a send does). Asked again as the user types, at most once per
// pause, and only the newest answer is shown.

import { gql } from "./api.js";
import { Q_CONTEXT } from "./documents.js";

const DEBOUNCE_MS = 300;

export class ContextGauge {
  constructor(box, meter, label) {
    this.box = box;
    this.meter = meter;
    this.label = label;
    this.timer = null;
    this.asked = 0; // numbers the questions, so a slow answer cannot overwrite a newer one
  }

  // Ask soon: called on every keystroke, it asks once the typing pauses.
  later(conversationId, text) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(conversationId, text), DEBOUNCE_MS);
  }

  async now(conversationId, text) {
    clearTimeout(this.timer);
    const question = ++this.asked;
    if (conversationId === null) {
      this.box.hidden = true;
      return;
    }
    try {
      const usage = (await gql(Q_CONTEXT, { id: conversationId, text: text || null }))
        .contextUsage;
      if (question === this.asked) this.show(usage);
    } catch (err) {
      if (question === this.asked) this.showProblem(err);
    }
  }

  hide() {
    clearTimeout(this.timer);
    this.asked++;
    this.box.hidden = true;
  }

  show(usage) {
    const { contextSize, promptTokens, replyTokens, droppedMessages, fits } = usage;
    const used = promptTokens + replyTokens;
    this.meter.max = contextSize;
    this.meter.value = Math.min(used, contextSize);
    this.meter.high = contextSize * 0.8;
    this.meter.optimum = 0;
    let text = `${promptTokens} prompt + ${replyTokens} reply tokens of ${contextSize}`;
    if (droppedMessages > 0) {
      const plural = droppedMessages === 1 ? "message" : "messages";
      text += ` · ${droppedMessages} earlier ${plural} left out to fit`;
    }
    if (!fits) text += " · too long for the context";
    this.label.textContent = text;
    this.box.dataset.fits = String(fits);
    this.box.dataset.dropped = String(droppedMessages);
    this.box.hidden = false;
  }

  showProblem(err) {
    this.label.textContent = `context: ${err.code ?? "ERROR"}: ${err.message}`;
    this.box.dataset.fits = "unknown";
    this.box.hidden = false;
  }
}
