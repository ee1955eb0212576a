// One order's whole history as a timeline, from GET /api/orders/{id}: every event
// with its seq and time; the routing quotes of every venue with the chosen plan
// and why; min-out; txHash and the slot it landed in. Fields the page has no
// special rendering for are listed as they come, so new event kinds still show.

import { api } from "./api.js";
import { chip, el, shortId, time } from "./format.js";

const HEADER_FIELDS = new Set(["orderId", "seq", "status", "timestamp", "cursor"]);
const STRUCTURED = new Set(["quotes", "plan", "legs", "unfilled", "skipped"]);

export class Detail {
  constructor({ panel, title, summary, timeline, close, onClose }) {
    Object.assign(this, { panel, title, summary, timeline });
    this.orderId = null;
    this.timer = null;
    this.onClose = onClose;
    close.addEventListener("click", () => this.hide());
    panel.addEventListener("keydown", (event) => { if (event.key === "Escape") this.hide(); });
  }

  async show(orderId) {
    this.orderId = orderId;
    this.panel.hidden = false;
    this.title.textContent = `Order ${shortId(orderId)}`;
    await this.refresh();
    this.title.focus();
  }

  hide() {
    const was = this.orderId;
    this.orderId = null;
    this.panel.hidden = true;
    this.onClose(was);
  }

  // The order got an event: re-read it (coalesced, so a burst is one request).
  touched(orderId) {
    if (orderId !== this.orderId || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.refresh(); }, 150);
  }

  async refresh() {
    const id = this.orderId;
    if (!id) return;
    let order;
    try {
      order = await api(`/api/orders/${encodeURIComponent(id)}`);
    } catch (error) {
      this.summary.replaceChildren(el("dt", { text: "error" }), el("dd", { class: "error", text: error.message }));
      return;
    }
    if (id !== this.orderId) return;
    this.#summary(order);
    this.timeline.replaceChildren(...order.events.map((event) => this.#event(event)));
  }

  #summary(order) {
    const rows = [
      ["id", el("span", { class: "mono", text: order.orderId })],
      ["type", order.type],
      ["pair", `${order.inputToken} → ${order.outputToken}`],
      ["amount", `${order.amountIn} ${order.inputToken}`],
      ["slippage", `${order.slippageBps} bps`],
      ["status", chip(order.status)],
      ["attempts", order.attempts],
    ];
    if (order.limitPrice) {
      rows.push(["limit", `${order.limitPrice} ${order.outputToken} per ${order.inputToken}`]);
      rows.push(["min out", `${order.minAmountOut} ${order.outputToken}`]);
    }
    if (order.expiresAt) rows.push(["expires", time(order.expiresAt)]);
    if (order.error) rows.push(["error", `${order.error.code}: ${order.error.message}`]);
    if (order.status === "open") rows.push(["", this.#cancelButton(order.orderId)]);
    this.summary.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", {}, value)]));
  }

  // Only an open order can be cancelled; a 409 (it fired meanwhile) is shown as is.
  #cancelButton(orderId) {
    const button = el("button", { type: "button", id: "cancel-order", class: "secondary", text: "Cancel order" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api(`/api/orders/${encodeURIComponent(orderId)}`, { method: "DELETE" });
      } catch (error) {
        button.replaceWith(el("span", { class: "error", text: `${error.code}: ${error.message}` }));
        return;
      }
      await this.refresh();
    });
    return button;
  }

  #event(event) {
    const parts = [
      el("strong", { text: `#${event.seq} ` }), chip(event.status),
      el("time", { class: "when", datetime: event.timestamp, text: time(event.timestamp) }),
    ];
    const body = [];
    if (event.quotes) body.push(quotesTable(event.quotes, event.plan));
    if (event.plan) body.push(planList(event.plan));
    if (event.legs && !event.plan) body.push(legsList(event.legs));
    if (event.unfilled?.length) body.push(fields({ unfilled: event.unfilled.map((u) => `${u.venue}/${u.poolKind}: ${u.reason}`).join("; ") }));
    if (event.skipped && Object.keys(event.skipped).length) body.push(fields({ skipped: JSON.stringify(event.skipped) }));
    const rest = Object.fromEntries(Object.entries(event).filter(([k]) => !HEADER_FIELDS.has(k) && !STRUCTURED.has(k)));
    if (Object.keys(rest).length) body.push(fields(rest));
    return el("li", { dataset: { seq: event.seq, status: event.status } }, el("div", {}, parts), body);
  }
}

function fields(values) {
  return el("dl", {}, Object.entries(values).flatMap(([name, value]) => [
    el("dt", { text: name }),
    el("dd", { class: /hash|pool|tx/i.test(name) ? "mono" : undefined, text: typeof value === "object" ? JSON.stringify(value) : String(value) }),
  ]));
}

function quotesTable(quotes, plan) {
  const chosen = new Set((plan?.legs ?? []).map((leg) => leg.pool));
  const head = el("tr", {}, ["venue", "in", "out", "fee", "impact bps", ""].map((h) => el("th", { scope: "col", text: h })));
  const rows = quotes.map((q) => el("tr", {},
    el("td", { text: `${q.venue}/${q.poolKind}` }),
    el("td", { class: "num", text: `${q.amountIn} ${q.inputToken}` }),
    el("td", { class: "num", text: `${q.amountOut} ${q.outputToken}` }),
    el("td", { class: "num", text: q.fee }),
    el("td", { class: "num", text: q.priceImpactBps }),
    el("td", { text: chosen.has(q.pool) ? "chosen" : "" })));
  return el("div", { class: "table-wrap" }, el("table", { "aria-label": "Quotes from every venue" }, el("thead", {}, head), el("tbody", {}, rows)));
}

function legsList(legs) {
  return fields({ legs: legs.map((l) => `${l.venue}/${l.poolKind} ${l.percent}%${l.hop > 1 ? ` (hop ${l.hop})` : ""}`).join(", ") });
}

function planList(plan) {
  return fields({
    chosen: `${plan.dex} (${plan.kind})`,
    legs: (plan.legs ?? []).map((l) => `${l.venue}/${l.poolKind} ${l.percent}%${l.hop > 1 ? ` (hop ${l.hop})` : ""}`).join(", "),
    expected: plan.expectedAmountOut,
    minOut: plan.minAmountOut,
    impactBps: plan.priceImpactBps,
    reason: plan.reason,
  });
}
