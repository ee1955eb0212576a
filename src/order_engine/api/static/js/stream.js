// The account stream (/api/orders/stream): every event of every order of this key.
// It resumes after a reconnect with ?after=<last cursor> (cursors are positions,
// not secrets). With a key, each connection takes a single-use ticket from
// POST /api/ws-tickets (the key in a header) and puts only that in the URL.

import { api, apiKey, keyNeeded, socketUrl } from "./api.js";

const CLOSE_POLICY = 1008;
const CLOSE_UNAUTHORIZED = 4401;

export class AccountStream {
  constructor({ onEvent, onSubscribed, onState }) {
    this.onEvent = onEvent;
    this.onSubscribed = onSubscribed;
    this.onState = onState;
    this.cursor = null;
    this.socket = null;
    this.retryMs = 250;
    this.waitingForKey = false;
  }

  start() {
    this.waitingForKey = false;
    this.generation = (this.generation ?? 0) + 1; // a connect still fetching a ticket gives up
    this.#connect();
  }

  // A new key: start over (another key sees other orders).
  restart() {
    this.cursor = null;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.start();
  }

  #retry(message) {
    this.onState("reconnecting", message);
    setTimeout(() => this.#connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 4000);
  }

  async #connect() {
    this.onState(this.cursor === null ? "connecting" : "reconnecting");
    const generation = this.generation;
    let ticket = null;
    if (apiKey()) {
      try {
        ticket = (await api("/api/ws-tickets", { method: "POST" })).ticket;
        if (generation !== this.generation) return;
      } catch (failed) {
        if (generation !== this.generation) return;
        if (failed.status === 401) { // api() has asked for a key already
          this.waitingForKey = true;
          this.onState("error", "API key needed");
        } else {
          this.#retry(failed.message);
        }
        return;
      }
    }
    const socket = new WebSocket(socketUrl("/api/orders/stream", { after: this.cursor, ticket }));
    this.socket = socket;
    let error = null;
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "subscribed") {
        const fresh = this.cursor === null;
        this.cursor = data.cursor;
        this.retryMs = 250;
        this.onState("live");
        this.onSubscribed(fresh);
      } else if (data.type === "error") {
        error = data;
      } else if (data.orderId) {
        this.cursor = data.cursor ?? this.cursor;
        this.onEvent(data);
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      if (event.code === CLOSE_UNAUTHORIZED) {
        this.waitingForKey = true;
        this.onState("error", "API key needed");
        keyNeeded(error?.message ?? "this engine requires an API key");
        return; // start() again once a key is entered
      }
      if (event.code === CLOSE_POLICY && this.cursor !== null) {
        this.cursor = null; // the cursor is not this engine's (a new database): start over
      }
      this.#retry(error?.message);
    };
  }
}
