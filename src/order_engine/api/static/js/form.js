// The order form with a live quote preview. Order types are data: a new type
// (limit, sniper) is one more entry in ORDER_TYPES with its extra fields and how
// they go into the body; the rest of the form is shared.

import { api } from "./api.js";
import { el, shortId } from "./format.js";

// The engine's token list (symbols it accepts; mints work too).
const TOKENS = ["SOL", "USDC", "USDT", "BONK", "JUP"];

const ORDER_TYPES = {
  market: {
    label: "Market",
    fields: [],
    body: (common) => common,
  },
  limit: {
    label: "Limit",
    fields: [
      { name: "limitPrice", label: "Limit price (buy token per sell token)" },
      { name: "expiresInS", label: "Expires in (seconds, optional)", inputmode: "numeric" },
    ],
    body: (common, extra) => ({
      ...common,
      type: "limit",
      limitPrice: extra.limitPrice,
      ...(extra.expiresInS ? { expiresInS: Number(extra.expiresInS) } : {}),
    }),
  },
};

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class OrderForm {
  constructor({ form, onAccepted }) {
    this.form = form;
    this.onAccepted = onAccepted;
    this.$ = (id) => form.querySelector(`#${id}`);
    this.quoteSeq = 0;
    this.timer = null;
    const type = this.$("order-type");
    type.replaceChildren(...Object.entries(ORDER_TYPES).map(([value, t]) => el("option", { value, text: t.label })));
    for (const [id, chosen] of [["input-token", "SOL"], ["output-token", "USDC"]]) {
      this.$(id).replaceChildren(...TOKENS.map((t) => el("option", { value: t, text: t, selected: t === chosen })));
    }
    type.addEventListener("change", () => this.#typeFields());
    this.#typeFields();
    // One Idempotency-Key per order as typed: pressing Submit again after a lost
    // response cannot create a second order; any edit makes it a new order.
    this.idempotencyKey = null;
    form.addEventListener("input", () => { this.idempotencyKey = null; this.#scheduleQuote(); });
    form.addEventListener("change", () => this.#scheduleQuote());
    form.addEventListener("submit", (event) => { event.preventDefault(); this.#submit(); });
    this.#scheduleQuote();
  }

  #type() {
    return ORDER_TYPES[this.$("order-type").value] ?? ORDER_TYPES.market;
  }

  #typeFields() {
    const box = this.$("type-fields");
    box.replaceChildren(...this.#type().fields.map((f) => el("div", { class: "field" },
      el("label", { for: `field-${f.name}`, text: f.label }),
      el("input", { id: `field-${f.name}`, name: f.name, inputmode: f.inputmode ?? "decimal", autocomplete: "off" }))));
  }

  #common() {
    const body = {
      inputToken: this.$("input-token").value,
      outputToken: this.$("output-token").value,
      amount: this.$("amount").value.trim(),
    };
    const slippage = this.$("slippage").value.trim();
    if (slippage) body.slippageBps = Number(slippage);
    return body;
  }

  #scheduleQuote() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#quote(), 250);
  }

  async #quote() {
    const seq = ++this.quoteSeq;
    const out = this.$("quote");
    const body = this.#common();
    if (!body.amount) { out.replaceChildren("Enter an amount to see a quote."); return; }
    const params = new URLSearchParams({ inputToken: body.inputToken, outputToken: body.outputToken, amount: body.amount });
    if (body.slippageBps) params.set("slippageBps", String(body.slippageBps));
    try {
      const q = await api(`/api/quote?${params}`);
      if (seq !== this.quoteSeq) return;
      const legs = q.routePlan.map((l) => `${l.swapInfo.label} ${l.percent}%${l.hop > 1 ? ` (hop ${l.hop})` : ""}`).join(", ");
      out.replaceChildren(
        el("div", {}, "Expected ", el("strong", { text: `${q.ui.outAmount} ${q.outputToken}` }), ` (min ${q.ui.otherAmountThreshold})`),
        el("div", { text: `Price impact ${q.priceImpactPct}% · route ${legs}` }),
        el("div", { text: q.reason }));
    } catch (error) {
      if (seq !== this.quoteSeq) return;
      out.replaceChildren(el("span", { class: "error", text: error.message }));
    }
  }

  async #submit() {
    const result = this.$("submit-result");
    const button = this.$("submit-order");
    const type = this.#type();
    const extra = Object.fromEntries(type.fields.map((f) => [f.name, this.form.querySelector(`#field-${f.name}`).value.trim()]));
    button.disabled = true;
    result.className = "result";
    result.textContent = "Submitting…";
    try {
      const accepted = await api("/api/orders/execute", {
        method: "POST",
        body: type.body(this.#common(), extra),
        headers: { "idempotency-key": (this.idempotencyKey ??= uuid()) },
      });
      this.idempotencyKey = null;
      result.textContent = `Order ${shortId(accepted.orderId)} accepted.`;
      this.onAccepted(accepted.orderId);
    } catch (error) {
      result.className = "result error";
      result.textContent = `${error.code}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }
}
