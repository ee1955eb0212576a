// Display helpers. Amounts arrive from the engine as decimal strings in UI units;
// they are shown as they are (no float rounding of what was filled).

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function shortId(id) {
  return String(id).slice(0, 8);
}

export function chip(status) {
  return el("span", { class: "chip", dataset: { status }, text: status });
}

export function seconds(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function time(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? "");
  const base = date.toLocaleTimeString([], { hour12: false });
  return `${base}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

// A few significant digits for prices, exact strings elsewhere.
export function price(value) {
  const n = Number(value);
  if (!Number.isFinite(n) || value === undefined || value === null || value === "") return "";
  if (n === 0) return "0";
  const digits = Math.max(2, 6 - Math.max(0, Math.floor(Math.log10(Math.abs(n))) + 1));
  return n.toFixed(Math.min(digits, 12)).replace(/\.?0+$/, "");
}
