// Rendering: the query card, the agreement panel, the results grid, filter chips, the comparison table, errors
// and the footer.
import { scatter, sweep } from "./charts.js";

const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP, unlike style=""
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// softmax(logits / T) with its log-sum-exp, and the entropy in nats.
export function softmax(logits, temperature) {
  const scaled = logits.map((v) => v / temperature);
  const top = Math.max(...scaled);
  const exps = scaled.map((v) => Math.exp(v - top));
  const total = exps.reduce((a, b) => a + b, 0);
  const logTotal = top + Math.log(total);
  const probabilities = exps.map((e) => e / total);
  const entropy = -scaled.reduce((sum, v, i) => sum + (probabilities[i] > 0 ? probabilities[i] * (v - logTotal) : 0), 0);
  return { probabilities, entropy };
}

export function argmax(values) {
  return values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
}

export function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

export function hideResults() {
  for (const id of ["query-card", "agreement-card", "results-section", "compare"]) $(id).hidden = true;
}

export function renderQuery({ title, thumb, logits, labels, temperature }) {
  $("query-card").hidden = false;
  $("query-title").textContent = title;
  const image = $("query-thumb");
  image.hidden = !thumb;
  if (thumb) image.src = thumb;
  const { probabilities, entropy } = softmax(logits, temperature);
  const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  // Bars are scaled to the largest probability, so that they stay apart at high T; the scale says so.
  const top = order[0][0];
  $("top5").replaceChildren(
    ...order.map(([p, i]) =>
      el("div", { class: "bar-row" },
        el("span", { class: "bar-label" }, labels[i] ?? String(i)),
        el("span", { class: "bar" }, el("span", { class: "fill", style: { width: `${(100 * p / top).toFixed(1)}%` } })),
        el("span", { class: "bar-value" }, p.toFixed(3)),
      ),
    ),
    el("div", { class: "bar-scale" }, el("span", {}, "scale"), el("span", { class: "axis" }, el("span", {}, "0"), el("span", {}, top.toFixed(3))), el("span", {})),
  );
  $("entropy").textContent = `entropy ${formatNumber(entropy)} nats at T = ${temperature}`;
}

export function renderAgreement(agreement, labels = [], onPick = () => {}) {
  const text = $("agreement-text");
  const card = $("agreement-card");
  if (!agreement) {
    text.textContent = "…";
    card.hidden = true;
    return;
  }
  const { metric, reference } = agreement;
  $("agreement-title").textContent = `Does ${metric} follow ${reference} here?`;
  const rho = agreement.spearman === null ? "n/a" : agreement.spearman.toFixed(3);
  const verdict = agreement.overlap >= 0.8 ? "yes" : agreement.overlap >= 0.5 ? "partly" : "not much";
  text.replaceChildren(
    el("strong", { "data-testid": "agreement-verdict" }, verdict),
    `: ${agreement.shared} of the exact ${reference.toUpperCase()} top-${agreement.reference_ids.length} are in the ${metric} top-${agreement.metric_ids.length} `,
    `(overlap ${agreement.overlap.toFixed(2)}); Spearman's ρ over those ${agreement.compared} items: ${rho}`,
    el("small", {}, ` at T = ${agreement.temperature}, computed by the service`),
  );
  card.hidden = false;
  const shared = new Set(agreement.metric_ids.filter((id) => agreement.reference_ids.includes(id)));
  const list = (ids) => ids.map((id) =>
    el("li", { class: shared.has(id) ? "shared" : "" },
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); onPick(id); } }, id),
      shared.has(id) ? el("span", { class: "both", title: "in both lists" }, " ●") : null));
  $("metric-list-title").textContent = `${metric} top-${agreement.metric_ids.length}`;
  $("reference-list-title").textContent = `exact ${reference} top-${agreement.reference_ids.length}`;
  $("metric-list").replaceChildren(...list(agreement.metric_ids));
  $("reference-list").replaceChildren(...list(agreement.reference_ids));
  const marked = agreement.compared_ids.map((id) => shared.has(id));
  scatter($("agreement-scatter"), agreement.metric_values, agreement.reference_values, marked, { xLabel: metric, yLabel: reference });
  $("scatter-caption").textContent = `the ${agreement.compared} items of either list: ${metric} (x) against ${reference} (y); filled: in both`;
  if (agreement.sweep) {
    sweep($("agreement-sweep"), agreement.sweep.map((s) => s.temperature), agreement.sweep.map((s) => s.overlap),
      { xLabel: "T", yLabel: `overlap@${agreement.k}`, current: agreement.temperature });
  }
}

export function renderResults(hits, { metric, onPick, onCompare, compared }) {
  $("results-section").hidden = false;
  $("results-note").textContent = `${hits.length} closest by ${metric} (lower is closer)`;
  $("results").replaceChildren(
    ...hits.map((hit, rank) => {
      const picked = compared.includes(hit.id);
      return el("li", { class: "result", "data-id": hit.id },
        el("button", { type: "button", class: "thumb", title: `search from ${hit.id}`, onclick: () => onPick(hit.id) },
          el("img", { alt: hit.id, "data-thumb": hit.id, hidden: true }),
          el("span", { class: "no-thumb" }, "no thumbnail"),
        ),
        el("div", { class: "meta" },
          el("span", { class: "rank" }, `#${rank + 1}`),
          el("a", { href: "#", class: "id", onclick: (e) => { e.preventDefault(); onPick(hit.id); } }, hit.id),
          el("span", { class: "distance" }, `${metric} ${formatNumber(hit.distance)}`),
          el("span", { class: "label" }, labelText(hit.metadata)),
          el("span", { class: "predicted", "data-predicted": hit.id }, ""),
          el("label", { class: "compare-pick" },
            el("input", { type: "checkbox", checked: picked, onchange: () => onCompare(hit.id) }), "compare"),
        ),
      );
    }),
  );
}

export function setThumbnail(id, url) {
  for (const image of document.querySelectorAll("img[data-thumb]")) {
    if (image.dataset.thumb !== id || !url) continue;
    image.src = url;
    image.hidden = false;
    image.nextElementSibling.hidden = true;
  }
}

export function setPredicted(id, text) {
  for (const span of document.querySelectorAll("span[data-predicted]")) {
    if (span.dataset.predicted === id) span.textContent = `predicted ${text}`;
  }
}

function labelText(metadata) {
  if (metadata.label_name !== undefined) return `label ${metadata.label_name}`;
  if (metadata.label !== undefined) return `label ${metadata.label}`;
  return "";
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "∞";
  return Math.abs(value) >= 1e-3 || value === 0 ? value.toFixed(4) : value.toExponential(3);
}

// Chips for the metadata values of the results (click: filter on it) and the active filter (click: drop it).
export function renderChips(filter, candidates, { onAdd, onRemove, labels = [] }) {
  // A predicted class shows as its label name (the filter keeps the index, which every model has).
  const shown = (key, value) => (key === "predicted" && labels[value] !== undefined ? `${key} = ${labels[value]}` : `${key} = ${JSON.stringify(value)}`);
  const active = Object.entries(filter).map(([key, value]) =>
    el("button", { type: "button", class: "chip active", title: "remove this filter", onclick: () => onRemove(key) },
      `${shown(key, value)} ×`),
  );
  const offered = candidates
    .filter(([key]) => !(key in filter))
    .map(([key, value]) =>
      el("button", { type: "button", class: "chip", title: "only items with this value", onclick: () => onAdd(key, value) },
        shown(key, value)),
    );
  $("filters").replaceChildren(...(active.length || offered.length ? [el("span", {}, "Filter:"), ...active, ...offered] : []));
}

export function renderComparison(a, b, values) {
  const box = $("compare");
  box.hidden = !values;
  if (!values) return;
  $("compare-title").textContent = `Divergences from ${a} to ${b}`;
  $("compare-table").replaceChildren(
    el("tr", {}, el("th", {}, "measure"), el("th", {}, `(${a}, ${b})`)),
    ...Object.entries(values).map(([name, row]) => el("tr", {}, el("td", {}, name), el("td", {}, formatNumber(row[0])))),
  );
}

export function renderFooter(index, version) {
  const device = index.device ? index.device.toUpperCase().replace("CUDA", "GPU (CUDA)") : "unavailable";
  $("footer").textContent =
    `model ${index.model} · index ${index.name}: ${index.count ?? "?"} items · ${device}` + (version ? ` · logit-search ${version}` : "");
}
