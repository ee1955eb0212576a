// The dashboard's composition: the store, the live stream, the table, the detail
// timeline, the form and the charts, and the API-key prompt.

import { api, apiKey, onKeyNeeded, setApiKey } from "./api.js";
import { Charts } from "./charts.js";
import { Detail } from "./detail.js";
import { Feed } from "./feed.js";
import { OrderForm } from "./form.js";
import { OrderStore } from "./store.js";
import { AccountStream } from "./stream.js";

const RECENT = 200;
const $ = (id) => document.getElementById(id);

const store = new OrderStore();
const feed = new Feed(store, {
  body: $("feed-body"), empty: $("feed-empty"), count: $("feed-count"),
  onOpen: (id) => { feed.select(id); detail.show(id); },
});
const detail = new Detail({
  panel: $("detail"), title: $("detail-title"), summary: $("detail-summary"),
  timeline: $("timeline"), close: $("detail-close"),
  onClose: (id) => {
    feed.select(null);
    document.querySelector(`tr[data-order-id="${id}"] button`)?.focus();
  },
});
store.subscribe((order) => { if (order) detail.touched(order.id); });

const connection = $("connection");
function showState(state, why) {
  connection.dataset.state = state;
  const words = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", error: "disconnected" };
  connection.textContent = why && state !== "live" ? `${words[state]} (${why})` : words[state] ?? state;
}

async function loadRecent() {
  try {
    const page = await api(`/api/orders?limit=${RECENT}`);
    store.addViews(page.orders);
  } catch (error) {
    showState("error", error.message);
  }
}

const stream = new AccountStream({
  onEvent: (event) => store.receive(event),
  // Listed after the stream has subscribed: whatever happens later arrives live.
  onSubscribed: (fresh) => { if (fresh) loadRecent(); },
  onState: showState,
});

// --- API key prompt --------------------------------------------------------------
const dialog = $("key-dialog");
const keyButton = $("key-button");
onKeyNeeded((message) => {
  keyButton.hidden = false;
  $("key-error").textContent = apiKey() ? `That key was refused: ${message}` : "";
  if (!dialog.open) dialog.showModal();
});
keyButton.addEventListener("click", () => dialog.showModal());
$("key-form").addEventListener("submit", () => {
  setApiKey($("key-input").value.trim());
  $("key-input").value = "";
  store.clear();
  stream.restart();
});

new OrderForm({
  form: $("order-form"),
  onAccepted: (id) => { feed.select(id); },
});
new Charts(store, { rate: $("chart-rate"), latency: $("chart-latency"), price: $("chart-price"), share: $("share") }).start();
stream.start();
