// Charts with uPlot (vendored: /dashboard/vendor/uplot, MIT). Throughput and
// latency come from the orders the page knows; venue prices from a 1 SOL
// SOL/USDC quote every few seconds while the tab is visible; volume share from
// confirmed orders, valued in USD where one side is a stablecoin or SOL.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { api } from "./api.js";
import { el } from "./format.js";

const WINDOW_S = 300;
const BUCKET_S = 5;
const PRICE_EVERY_MS = 3000;
const STABLE = new Set(["USDC", "USDT"]);
const COLORS = { raydium: "#8fa8ff", meteora: "#f5c26b", other: "#3fcf8e" };
const AXIS = { stroke: "#9aa5b1", grid: { stroke: "#2a323c" }, ticks: { stroke: "#2a323c" } };

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function chart(target, series, yLabel) {
  const opts = {
    width: Math.max(240, target.clientWidth),
    height: 180,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [{ ...AXIS }, { ...AXIS, label: yLabel, size: 60 }],
    series: [{}, ...series.map((s) => ({ spanGaps: true, width: 2, ...s }))],
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, target);
  new ResizeObserver(() => plot.setSize({ width: Math.max(240, target.clientWidth), height: 180 })).observe(target);
  return plot;
}

export class Charts {
  constructor(store, { rate, latency, price, share }) {
    this.store = store;
    this.share = share;
    this.prices = []; // {t, venue: price}
    this.venues = ["raydium", "meteora"];
    this.rate = chart(rate, [{ label: "orders/s", stroke: COLORS.other, fill: "rgba(63,207,142,.15)" }], "orders/s");
    this.latency = chart(latency, [
      { label: "p50", stroke: COLORS.raydium },
      { label: "p99", stroke: COLORS.meteora },
    ], "seconds");
    this.price = chart(price, this.venues.map((v) => ({ label: v, stroke: COLORS[v] })), "USDC");
  }

  start() {
    this.#samplePrice();
    setInterval(() => this.#samplePrice(), PRICE_EVERY_MS);
    setInterval(() => this.render(), 2000);
    this.render();
  }

  async #samplePrice() {
    if (document.hidden) return;
    try {
      const q = await api("/api/quote?inputToken=SOL&outputToken=USDC&amount=1");
      const best = {};
      for (const quote of q.quotes) {
        const out = Number(quote.amountOut);
        if (!(best[quote.venue] >= out)) best[quote.venue] = out;
      }
      this.prices.push({ t: Date.now() / 1000, ...best });
      const cutoff = Date.now() / 1000 - WINDOW_S;
      while (this.prices.length && this.prices[0].t < cutoff) this.prices.shift();
      this.price.setData([this.prices.map((p) => p.t), ...this.venues.map((v) => this.prices.map((p) => p[v] ?? null))]);
    } catch {
      // No key yet, or the engine is restarting: the next sample tries again.
    }
  }

  render() {
    const now = Date.now() / 1000;
    const first = Math.floor((now - WINDOW_S) / BUCKET_S) * BUCKET_S;
    const buckets = Math.ceil((now - first) / BUCKET_S);
    const xs = Array.from({ length: buckets }, (_, i) => first + (i + 1) * BUCKET_S);
    const counts = new Array(buckets).fill(0);
    const took = Array.from({ length: buckets }, () => []);
    for (const order of this.store.orders.values()) {
      const created = order.createdAt / 1000;
      const i = Math.floor((created - first) / BUCKET_S);
      if (i >= 0 && i < buckets) counts[i] += 1;
      if (order.status === "confirmed" && order.terminalAt) {
        const j = Math.floor((order.terminalAt / 1000 - first) / BUCKET_S);
        if (j >= 0 && j < buckets) took[j].push((order.terminalAt - order.createdAt) / 1000);
      }
    }
    // The current bucket is partial: rate it over the time it has covered so far.
    const rates = counts.map((n, i) => n / Math.max(1, Math.min(BUCKET_S, now - (first + i * BUCKET_S))));
    this.rate.setData([xs, rates]);
    const sorted = took.map((values) => values.sort((a, b) => a - b));
    this.latency.setData([xs, sorted.map((s) => quantile(s, 0.5)), sorted.map((s) => quantile(s, 0.99))]);
    this.#share();
  }

  #usd(order) {
    if (STABLE.has(order.outputToken)) return Number(order.filled);
    if (STABLE.has(order.inputToken)) return Number(order.amountIn);
    const sol = this.prices.at(-1);
    const solPrice = sol ? Math.max(...this.venues.map((v) => sol[v] ?? 0)) : 0;
    if (!solPrice) return null;
    if (order.outputToken === "SOL") return Number(order.filled) * solPrice;
    if (order.inputToken === "SOL") return Number(order.amountIn) * solPrice;
    return null;
  }

  #share() {
    const volume = {};
    let unpriced = 0;
    for (const order of this.store.orders.values()) {
      if (order.status !== "confirmed") continue;
      const usd = this.#usd(order);
      if (!Number.isFinite(usd)) { unpriced += 1; continue; }
      const legs = order.legs.length ? order.legs : [{ venue: order.venue ?? "other", percent: 100, hop: 1 }];
      const hops = Math.max(...legs.map((l) => l.hop ?? 1));
      for (const leg of legs) {
        volume[leg.venue] = (volume[leg.venue] ?? 0) + (usd * leg.percent) / 100 / hops;
      }
    }
    const total = Object.values(volume).reduce((a, b) => a + b, 0);
    if (!total) {
      this.share.replaceChildren(el("p", { class: "muted", text: "No confirmed orders yet." }));
      return;
    }
    const entries = Object.entries(volume).sort((a, b) => b[1] - a[1]);
    const swatch = (venue) => COLORS[venue] ?? COLORS.other;
    const bar = el("div", { class: "bar", role: "img", "aria-label": entries.map(([v, x]) => `${v} ${((100 * x) / total).toFixed(1)}%`).join(", ") },
      entries.map(([venue, x]) => {
        const span = el("span", { title: venue });
        span.style.width = `${(100 * x) / total}%`;
        span.style.background = swatch(venue);
        return span;
      }));
    const list = el("ul", {}, entries.map(([venue, x]) => {
      const item = el("li", { text: `${venue}: ${((100 * x) / total).toFixed(1)}% ($${x.toFixed(2)})` });
      item.style.setProperty("--swatch", swatch(venue));
      return item;
    }));
    const note = unpriced ? el("p", { class: "muted", text: `${unpriced} confirmed order(s) on pairs without USD or SOL not counted.` }) : null;
    this.share.replaceChildren(...[bar, list, note].filter(Boolean));
  }
}
