// Every order the page knows, kept gapless per order: an event is applied only
// when it is the next seq; a gap (or a row first seen in the list, whose events
// were never loaded) is filled from GET /api/orders/{id}/events?afterSeq=<last>.
// Statuses and fields the page does not know are kept and shown as they are.

import { api } from "./api.js";

export const TERMINAL = new Set(["confirmed", "failed", "expired", "cancelled"]);
const MAX_ORDERS = 2000;

function fromView(view) {
  const terminal = TERMINAL.has(view.status);
  return {
    id: view.orderId,
    type: view.type ?? view.orderType ?? "market",
    inputToken: view.inputToken,
    outputToken: view.outputToken,
    amountIn: view.amountIn,
    status: view.status,
    venue: view.fill?.dex ?? view.route?.dex ?? null,
    legs: view.route?.legs ?? [],
    filled: view.fill?.amountOut ?? null,
    price: view.fill?.executedPrice ?? null,
    error: view.error?.code ?? null,
    createdAt: Date.parse(view.createdAt),
    terminalAt: terminal ? Date.parse(view.updatedAt) : null,
    lastSeq: null, // events not loaded: the first live event loads them all
    chain: Promise.resolve(),
  };
}

function blank(id) {
  return {
    id, type: "market", inputToken: null, outputToken: null, amountIn: null, status: "?",
    venue: null, legs: [], filled: null, price: null, error: null,
    createdAt: Date.now(), terminalAt: null, lastSeq: 0, chain: Promise.resolve(),
  };
}

export class OrderStore {
  constructor() {
    this.orders = new Map();
    this.listeners = new Set();
    this.errors = 0;
  }

  subscribe(listener) {
    this.listeners.add(listener);
  }

  #changed(order) {
    for (const listener of this.listeners) listener(order);
  }

  // Another key sees other orders: forget everything (listeners get null).
  clear() {
    this.orders.clear();
    for (const listener of this.listeners) listener(null);
  }

  // Rows from the list API. A row the live stream already owns (events applied
  // in seq order) is fresher than any list and is left alone.
  addViews(views) {
    for (const view of views) {
      const known = this.orders.get(view.orderId);
      if (known && known.lastSeq !== null) continue;
      const order = fromView(view);
      if (known) order.chain = known.chain;
      this.orders.set(order.id, order);
      this.#changed(order);
    }
    this.#trim();
  }

  // One event from the account stream; applied strictly in seq order per order.
  // A failed fill (429, a restart) is retried a few times, so that an order's
  // last event is not left unapplied for want of a later one.
  receive(event, attempt = 0) {
    let order = this.orders.get(event.orderId);
    if (!order) {
      order = blank(event.orderId);
      this.orders.set(order.id, order);
      this.#trim();
    }
    const target = order;
    target.chain = target.chain
      .then(() => this.#receive(target, event))
      .catch(() => {
        this.errors += 1;
        if (attempt < 5) setTimeout(() => this.receive(event, attempt + 1), 500 * (attempt + 1));
      });
    return target.chain;
  }

  async #receive(order, event) {
    if (order.lastSeq !== null && event.seq <= order.lastSeq) return; // seen already
    if (order.lastSeq === null || event.seq !== order.lastSeq + 1) {
      const after = order.lastSeq ?? 0;
      const page = await api(`/api/orders/${encodeURIComponent(order.id)}/events?afterSeq=${after}`);
      if (order.lastSeq === null) order.lastSeq = 0;
      for (const missed of page.events) {
        if (missed.seq === order.lastSeq + 1) this.#apply(order, missed);
      }
    }
    if (event.seq === order.lastSeq + 1) this.#apply(order, event);
    this.#changed(order);
  }

  #apply(order, event) {
    order.lastSeq = event.seq;
    order.status = event.status;
    const at = Date.parse(event.timestamp);
    switch (event.status) {
      case "pending":
        order.type = event.orderType ?? event.type ?? order.type;
        order.inputToken = event.inputToken ?? order.inputToken;
        order.outputToken = event.outputToken ?? order.outputToken;
        order.amountIn = event.amountIn ?? order.amountIn;
        if (event.seq === 1 && Number.isFinite(at)) order.createdAt = at;
        break;
      case "routing":
        order.venue = event.plan?.dex ?? order.venue;
        order.legs = event.plan?.legs ?? order.legs;
        break;
      case "confirmed":
        order.filled = event.amountOut ?? order.filled;
        order.price = event.executedPrice ?? order.price;
        break;
      case "failed":
        order.error = event.code ?? null;
        break;
      default:
        break;
    }
    if (event.dex) order.venue = event.dex;
    if (TERMINAL.has(event.status) && Number.isFinite(at)) order.terminalAt = at;
  }

  newest(limit) {
    return [...this.orders.values()].sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  }

  #trim() {
    if (this.orders.size <= MAX_ORDERS) return;
    for (const order of this.newest(this.orders.size).slice(MAX_ORDERS)) {
      this.orders.delete(order.id);
    }
  }
}
