// The order table: newest first, one row per order, updated in place. Redraws are
// batched to one per animation frame, so a burst of events costs one layout.

import { chip, el, price, seconds, shortId } from "./format.js";

const ROWS = 200;

export class Feed {
  constructor(store, { body, empty, count, onOpen }) {
    this.store = store;
    this.body = body;
    this.empty = empty;
    this.count = count;
    this.onOpen = onOpen;
    this.rows = new Map();
    this.dirty = new Set();
    this.reorder = false;
    this.frame = null;
    this.selected = null;
    store.subscribe((order) => this.#mark(order));
  }

  select(id) {
    this.selected = id;
    for (const [rowId, row] of this.rows) {
      row.setAttribute("aria-selected", rowId === id ? "true" : "false");
    }
  }

  #mark(order) {
    if (order === null || !this.rows.has(order.id)) this.reorder = true;
    if (order !== null) this.dirty.add(order.id);
    this.frame ??= requestAnimationFrame(() => this.#render());
  }

  #render() {
    this.frame = null;
    const shown = this.store.newest(ROWS);
    if (this.reorder) {
      const keep = new Set(shown.map((o) => o.id));
      for (const [id, row] of this.rows) {
        if (!keep.has(id)) { row.remove(); this.rows.delete(id); }
      }
      for (const order of shown) {
        if (!this.rows.has(order.id)) { this.rows.set(order.id, this.#row(order)); this.dirty.add(order.id); }
      }
      const inOrder = shown.map((o) => this.rows.get(o.id));
      inOrder.forEach((row, i) => { if (this.body.children[i] !== row) this.body.insertBefore(row, this.body.children[i] ?? null); });
      this.reorder = false;
    }
    for (const id of this.dirty) {
      const row = this.rows.get(id);
      const order = this.store.orders.get(id);
      if (row && order) this.#fill(row, order);
    }
    this.dirty.clear();
    this.empty.hidden = this.rows.size > 0;
    this.count.textContent = this.store.orders.size ? `(${this.store.orders.size})` : "";
  }

  #row(order) {
    const open = el("button", {
      type: "button", class: "link", text: shortId(order.id),
      "aria-label": `Order ${shortId(order.id)}: show its events`,
      onclick: () => this.onOpen(order.id),
    });
    const cells = Array.from({ length: 8 }, (_, i) => el("td", { class: [2, 5, 6, 7].includes(i) ? "num" : undefined }));
    const row = el("tr", { dataset: { orderId: order.id } }, el("th", { scope: "row" }, open), cells);
    row.setAttribute("aria-selected", order.id === this.selected ? "true" : "false");
    return row;
  }

  #fill(row, order) {
    const [type, pair, amount, status, venue, filled, px, took] = row.querySelectorAll("td");
    row.dataset.status = order.status;
    type.textContent = order.type ?? "";
    pair.textContent = order.inputToken ? `${order.inputToken} → ${order.outputToken}` : "";
    amount.textContent = order.amountIn ?? "";
    if (status.firstChild?.textContent !== order.status) status.replaceChildren(chip(order.status));
    venue.textContent = order.venue ?? "";
    filled.textContent = order.filled ?? order.error ?? "";
    px.textContent = price(order.price);
    took.textContent = order.terminalAt ? seconds(order.terminalAt - order.createdAt) : "";
  }
}
