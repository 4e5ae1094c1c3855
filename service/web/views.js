// The views besides search: browse an index (filter, order, facets, pages by cursor), its map (a projection with
// box selection), the analyses' grids, and the indexes' admin (create, drop, upload a folder, delete an item).
import { deleteJson, encodeId, getJson, indexPrefix, postJson, thumbnailUrl } from "./api.js";
import { PALETTE, map as drawMap, lines } from "./charts.js";
import { el, formatNumber, showError, softmax } from "./view.js";

const $ = (id) => document.getElementById(id);
let app = null; // { context, act, searchFrom, reloadCatalog } from app.js
const browse = { cursor: null, key: "" };
const mapped = { ids: [], px: null, py: null, drag: null, key: "" };

export function wireViews(hooks) {
  app = hooks;
  $("browse-form").addEventListener("submit", (e) => { e.preventDefault(); app.act(() => showBrowse(true)); });
  $("browse-more").addEventListener("click", () => app.act(() => showBrowse(false)));
  $("map-form").addEventListener("submit", (e) => { e.preventDefault(); app.act(showMap); });
  $("analysis-form").addEventListener("submit", (e) => { e.preventDefault(); app.act(showAnalysis); });
  $("create-form").addEventListener("submit", (e) => { e.preventDefault(); app.act(createIndex); });
  $("upload-folder").addEventListener("change", (e) => app.act(() => upload([...e.target.files])));
  $("evaluate-form").addEventListener("submit", (e) => { e.preventDefault(); app.act(showEvaluation); });
  $("map-browse").addEventListener("click", () => app.act(() => app.showView("browse", () => showSelected(mapped.selected))));
  wireMap();
}

export async function showOther(view) {
  if (view === "browse") return showBrowse(true);
  if (view === "map") return showMap();
  if (view === "analyses") return null; // an analysis can take a while: it runs when asked, not on opening the view
  if (view === "admin") return showAdmin();
}

function filterOf(input) {
  const text = $(input).value.trim();
  if (!text) return null;
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // said below
  }
  throw new Error(`the filter is not a JSON object: write it as {"label": 3} (docs/filters.md)`);
}

// -- one item, as the grids show it ----------------------------------------------------------------------------

function itemCard(item, { prefix, labels, temperature, note, onDelete }) {
  const { probabilities } = softmax(item.logits, temperature);
  const top = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  const image = el("img", { alt: item.id, hidden: true });
  const summary = el("span", { class: "no-thumb" }, top.map(([p, i]) => `${labels[i] ?? i} ${p.toFixed(2)}`).join(" · "));
  thumbnailUrl(prefix, item.id).then((url) => {
    if (!url) return;
    image.src = url;
    image.hidden = false;
    summary.hidden = true;
  }).catch(() => {});
  return el("li", { class: "result", "data-id": item.id },
    el("button", { type: "button", class: "thumb", title: `search from ${item.id}`, onclick: () => app.searchFrom(item.id) }, image, summary),
    el("div", { class: "meta" },
      el("a", { href: "#", class: "id", onclick: (e) => { e.preventDefault(); app.searchFrom(item.id); } }, item.id),
      note ? el("span", { class: "note" }, note) : null,
      el("span", { class: "label" }, Object.entries(item.metadata).filter(([k]) => k !== "path").map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ")),
      el("span", { class: "predicted" }, `predicted ${labels[top[0][1]] ?? top[0][1]} (${top[0][0].toFixed(2)})`),
      onDelete ? el("button", { type: "button", class: "delete", onclick: () => onDelete(item.id) }, "delete") : null,
    ),
  );
}

// -- browse ----------------------------------------------------------------------------------------------------

async function showBrowse(fresh) {
  const { index, prefix, labels } = app.context();
  if (!index) return;
  const filter = filterOf("browse-filter");
  const temperature = Number($("browse-t").value) || 1;
  const body = { filter, order: $("browse-order").value, temperature, limit: 24, cursor: fresh ? null : browse.cursor };
  const page = await postJson(`${prefix}/items/list`, body);
  if (fresh) {
    $("browse-grid").replaceChildren();
    const [byLabel, byPredicted] = await Promise.all([
      postJson(`${prefix}/count`, { filter, temperature, group_by: "label", limit: 50 }),
      postJson(`${prefix}/count`, { filter, temperature, group_by: "predicted", limit: 50 }),
    ]);
    renderFacet("facet-label", byLabel.groups, (g) => String(g.value), (g) => ({ label: g.value }));
    renderFacet("facet-predicted", byPredicted.groups, (g) => g.label ?? String(g.value), (g) => ({ predicted: g.value }));
  }
  browse.cursor = page.next ?? null;
  $("browse-count").textContent = `${page.count} items match${page.count ? "" : " (none)"}`;
  const onDelete = (id) => app.act(() => deleteItem(prefix, id));
  $("browse-grid").append(...page.items.map((item) => itemCard(item, { prefix, labels, temperature, onDelete })));
  $("browse-more").hidden = !page.next;
}

// The items a map selection holds (the first 200), in the browse grid.
async function showSelected(ids) {
  const { prefix, labels } = app.context();
  const shown = ids.slice(0, 200);
  const items = await Promise.all(shown.map((id) => getJson(`${prefix}/items/${encodeId(id)}`)));
  const onDelete = (id) => app.act(() => deleteItem(prefix, id));
  $("browse-grid").replaceChildren(...items.map((item) => itemCard(item, { prefix, labels, temperature: 1, onDelete })));
  $("browse-count").textContent = `${ids.length} items selected on the map` + (ids.length > 200 ? " (the first 200 shown)" : "");
  $("browse-more").hidden = true;
}

function renderFacet(id, groups, name, filterFor) {
  $(id).replaceChildren(...(groups ?? []).map((group) =>
    el("li", {}, el("button", { type: "button", class: "chip", title: "show only these", onclick: () => app.act(async () => {
      const current = filterOf("browse-filter") ?? {};
      $("browse-filter").value = JSON.stringify({ ...current, ...filterFor(group) });
      await showBrowse(true);
    }) }, `${name(group)}: ${group.count}`))));
}

async function deleteItem(prefix, id) {
  if (!confirm(`Delete item ${id}? It cannot be undone.`)) return;
  await deleteJson(`${prefix}/items/${encodeId(id)}`);
  for (const card of document.querySelectorAll(`#browse-grid .result`)) if (card.dataset.id === id) card.remove();
}

// -- the map ---------------------------------------------------------------------------------------------------

async function showMap() {
  const { index, prefix, labels } = app.context();
  if (!index) return;
  const temperature = Number($("map-t").value) || 1;
  const started = performance.now();
  const answer = await postJson(`${prefix}/analyses/projection`, { temperature, max_items: 200000 });
  const s = answer.summary;
  const by = $("map-colour").value;
  const colours = s.ids.map((_, i) => colourOf(by, s, i));
  const drawn = drawMap($("map"), s.x, s.y, colours);
  Object.assign(mapped, { ids: s.ids, px: drawn.px, py: drawn.py, summary: s, labels });
  const ms = Math.round(performance.now() - started);
  $("map").dataset.points = String(s.ids.length);
  $("map").dataset.paintMs = String(ms);
  const [a, b] = s.explained_variance.map((v) => `${(100 * v).toFixed(0)} %`);
  $("map-note").textContent = `${s.ids.length} items, ${s.method} at T = ${temperature} (axes: ${a} and ${b} of the variance); drawn in ${ms} ms`;
  const keys = by === "confidence" ? ["0", "0.5", "1"] : [...new Set(s[by].filter((v) => v !== null))].sort((x, y) => x - y);
  $("map-legend").replaceChildren(...keys.map((key) =>
    el("span", { class: "legend" }, el("span", { class: "swatch", style: { background: by === "confidence" ? ramp(Number(key)) : PALETTE[Number(key) % PALETTE.length] } }),
      by === "confidence" ? key : labels[key] ?? String(key))));
}

function colourOf(by, s, i) {
  if (by === "confidence") return ramp(s.confidence[i]);
  const value = s[by][i];
  return value === null ? "#bbb" : PALETTE[value % PALETTE.length];
}

function ramp(value) { // low confidence red, high blue
  const t = Math.max(0, Math.min(1, value));
  return `rgb(${Math.round(228 * (1 - t) + 47 * t)}, ${Math.round(87 * (1 - t) + 111 * t)}, ${Math.round(46 * (1 - t) + 222 * t)})`;
}

function wireMap() {
  const canvas = $("map");
  const point = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * (canvas.width / box.width), (e.clientY - box.top) * (canvas.height / box.height)];
  };
  canvas.addEventListener("mousemove", (e) => {
    if (!mapped.px) return;
    const [x, y] = point(e);
    if (mapped.drag) {
      mapped.drag.to = [x, y];
      return;
    }
    let best = -1, bestDistance = 36;
    for (let i = 0; i < mapped.ids.length; i++) {
      const d = (mapped.px[i] - x) ** 2 + (mapped.py[i] - y) ** 2;
      if (d < bestDistance) { best = i; bestDistance = d; }
    }
    const s = mapped.summary;
    $("map-hover").textContent = best < 0 ? "" :
      `${mapped.ids[best]} · predicted ${mapped.labels[s.predicted[best]] ?? s.predicted[best]} · confidence ${s.confidence[best].toFixed(3)}` +
      (s.label[best] !== null ? ` · label ${mapped.labels[s.label[best]] ?? s.label[best]}` : "");
  });
  canvas.addEventListener("mousedown", (e) => {
    e.preventDefault(); // no text selection or native drag while a box is drawn
    mapped.drag = { from: point(e), to: point(e) };
  });
  canvas.addEventListener("mouseup", (e) => {
    if (!mapped.drag || !mapped.px) return;
    const [x0, y0] = mapped.drag.from, [x1, y1] = point(e);
    mapped.drag = null;
    select(Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1));
  });
}

// The items inside a box of the map (canvas pixels): listed, each a link to search from it.
function select(left, top, right, bottom) {
  const chosen = [];
  for (let i = 0; i < mapped.ids.length; i++) {
    if (mapped.px[i] >= left && mapped.px[i] <= right && mapped.py[i] >= top && mapped.py[i] <= bottom) chosen.push(mapped.ids[i]);
  }
  $("map-selected-title").textContent = `Selection: ${chosen.length} items` + (chosen.length > 200 ? " (the first 200 listed)" : "");
  $("map-selected").replaceChildren(...chosen.slice(0, 200).map((id) =>
    el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); app.searchFrom(id); } }, id))));
  $("map-selected").dataset.count = String(chosen.length);
  mapped.selected = chosen;
  $("map-browse").hidden = !chosen.length;
}

// -- analyses --------------------------------------------------------------------------------------------------

let analysisRun = 0; // only the latest run's answer is shown

async function showAnalysis() {
  const { index, prefix, labels } = app.context();
  if (!index) return;
  const run = ++analysisRun;
  const kind = $("analysis-kind").value;
  const temperature = Number($("analysis-t").value) || 1;
  const body = { filter: filterOf("analysis-filter"), temperature, limit: Number($("analysis-limit").value) || 48 };
  $("analysis-note").textContent = `running ${kind}…`;
  const answer = await postJson(`${prefix}/analyses/${kind}`, body);
  const ids = kind === "near-duplicates" ? answer.rows.flatMap((row) => [row.id, row.other]) : answer.rows.map((row) => row.id);
  const items = await Promise.all([...new Set(ids)].map((id) => getJson(`${prefix}/items/${encodeId(id)}`)));
  if (run !== analysisRun) return;
  const byId = new Map(items.map((item) => [item.id, item]));
  const note = (row, id) => {
    if (kind === "label-issues") return `quality ${row.score.toFixed(3)} · label ${labels[row.label] ?? row.label} · neighbours agree ${row.neighbour_agreement.toFixed(2)}`;
    if (kind === "near-duplicates") return `${row.distance.toExponential(2)} from ${id === row.id ? row.other : row.id}`;
    return `${answer.summary.by} ${formatNumber(row.score)}`;
  };
  const cards = answer.rows.flatMap((row) => (kind === "near-duplicates" ? [row.id, row.other] : [row.id])
    .map((id) => itemCard(byId.get(id), { prefix, labels, temperature, note: note(row, id) })));
  $("analysis-grid").replaceChildren(...cards);
  const extra = kind === "label-issues" ? ` (${answer.summary.issues} issues flagged by ${answer.summary.method})` : "";
  $("analysis-note").textContent = `${kind} over ${answer.read} items: ${answer.rows.length} shown${extra}`;
}

// The index-level evaluation (`POST .../evaluate`): overlap and Spearman with CE against T for every metric.
async function showEvaluation() {
  const { index, prefix } = app.context();
  if (!index) return;
  $("evaluate-note").textContent = "evaluating…";
  const report = await postJson(`${prefix}/evaluate`, { num_queries: Number($("evaluate-queries").value) || 100 });
  const temperatures = [...new Set(report.ranking.map((row) => row.temperature))].sort((a, b) => a - b);
  const metrics = [...new Set(report.ranking.map((row) => row.metric))];
  const series = (field) => metrics.map((metric) => ({
    name: metric,
    ys: temperatures.map((t) => report.ranking.find((row) => row.metric === metric && row.temperature === t)?.[field] ?? null),
  }));
  lines($("evaluate-overlap"), temperatures, series("overlap_at_k"), { xLabel: "T", yLabel: "overlap@k" });
  lines($("evaluate-spearman"), temperatures, series("spearman_mean"), { xLabel: "T", yLabel: "Spearman ρ", yRange: [-1, 1] });
  $("evaluate-legend").replaceChildren(...metrics.map((metric, i) =>
    el("span", { class: "legend" }, el("span", { class: "swatch", style: { background: PALETTE[i % PALETTE.length] } }), metric)));
  const queries = report.ranking[0]?.num_queries ?? 0;
  $("evaluate-note").textContent = `${metrics.length} metrics at ${temperatures.length} temperatures over ${queries} queries`;
  $("evaluate-overlap").dataset.series = String(metrics.length);
}

// -- admin -----------------------------------------------------------------------------------------------------

async function showAdmin() {
  const [{ indexes }, { models }] = await Promise.all([getJson("/v1/indexes"), getJson("/v1/models")]);
  const details = await Promise.all(indexes.map((index) => getJson(indexPrefix(index.name)).catch(() => index)));
  $("create-model").replaceChildren(...models.map((model) => new Option(model.name, model.name)));
  $("index-table").replaceChildren(
    el("tr", {}, ...["name", "model", "store", "items", "type", "recall@10", "status", ""].map((h) => el("th", {}, h))),
    ...details.map((index) => el("tr", { "data-index": index.name },
      el("td", {}, index.name), el("td", {}, index.model), el("td", {}, index.store), el("td", {}, index.count ?? "?"),
      el("td", {}, index.index_type),
      el("td", {}, index.recall_at_10 ? Object.entries(index.recall_at_10).map(([m, r]) => `${m} ${r.toFixed(3)}`).join(", ") : "exact"),
      el("td", {}, index.status === "ready" ? "ready" : `unavailable: ${index.reason}`),
      el("td", {}, index.name === "default" ? "" : el("button", { type: "button", class: "delete", onclick: () => app.act(() => dropIndex(index.name)) }, "drop")),
    )),
  );
}

async function createIndex() {
  const body = { name: $("create-name").value.trim(), model: $("create-model").value, store: $("create-store").value };
  await postJson("/v1/indexes", body);
  $("create-name").value = "";
  await app.reloadCatalog();
  await showAdmin();
}

async function dropIndex(name) {
  if (!confirm(`Drop index ${name} and every item in it? It cannot be undone.`)) return;
  await deleteJson(indexPrefix(name));
  await app.reloadCatalog();
  await showAdmin();
}

// A folder's images into the chosen index, 16 at a time (id: the path inside the folder), with a progress bar.
async function upload(files) {
  const { index, prefix } = app.context();
  const images = files.filter((file) => /\.(png|jpe?g|webp|bmp|gif)$/i.test(file.name));
  if (!index || !images.length) {
    showError("choose a folder holding PNG, JPEG, WebP, BMP or GIF images");
    return;
  }
  const bar = $("upload-progress");
  Object.assign(bar, { hidden: false, max: images.length, value: 0 });
  for (let start = 0; start < images.length; start += 16) {
    const batch = images.slice(start, start + 16);
    const items = await Promise.all(batch.map(async (file) => ({ id: file.webkitRelativePath || file.name, image: await base64(file) })));
    await postJson(`${prefix}/items`, { items });
    bar.value = start + batch.length;
    $("upload-note").textContent = `${bar.value} of ${images.length} images added to ${index.name}`;
  }
  await app.reloadCatalog();
  await showAdmin();
}

async function base64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
