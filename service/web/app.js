// The page: reads its state from the URL, asks the API, renders. A client of the public JSON API only.
import { ApiError, apiKey, encodeId, getJson, indexPrefix, postFiles, postJson, setApiKey, thumbnailUrl } from "./api.js";
import {
  argmax, hideResults, renderAgreement, renderChips, renderComparison, renderFooter, renderQuery, renderResults,
  setPredicted, setThumbnail, showError,
} from "./view.js";
import { showOther, wireViews } from "./views.js";

const $ = (id) => document.getElementById(id);
const state = { view: "search", index: "", k: 10, metric: "l2", reference: "ce", temperature: 1, filter: {}, query: null };
const page = { indexes: [], labels: {}, imageUrl: null, last: null, items: new Map(), compared: [], version: "" };
const VIEWS = ["search", "browse", "map", "analyses", "admin"];
const SWEEP = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128];
const IMAGE_STORAGE = "logitsearch.image.";

// -- state <-> URL ---------------------------------------------------------------------------------------------

function readUrl() {
  const params = new URLSearchParams(location.search);
  state.view = VIEWS.includes(params.get("view")) ? params.get("view") : "search";
  state.index = params.get("index") || state.index;
  state.k = Number(params.get("k")) || 10;
  state.metric = params.get("metric") || "l2";
  state.reference = params.get("ref") || "ce";
  state.temperature = Number(params.get("t")) || 1;
  state.filter = {};
  let problem = "";
  try {
    state.filter = params.get("filter") ? JSON.parse(params.get("filter")) : {};
  } catch {
    problem = 'the URL\'s filter is not JSON: write it as filter={"label":3}';
  }
  if (params.get("id")) state.query = { id: params.get("id") };
  else if (params.get("logits")) state.query = { logits: params.get("logits").split(",").map(Number) };
  else if (params.get("img")) {
    const kept = sessionStorage.getItem(IMAGE_STORAGE + params.get("img"));
    state.query = kept ? { logits: JSON.parse(kept), image: params.get("img") } : null;
    if (!kept) problem = "this link names an image uploaded in another browser session: upload the image again";
  } else state.query = null;
  return problem; // "" when the URL reads well
}

function writeUrl(push) {
  const params = new URLSearchParams({ view: state.view, index: state.index, k: state.k, metric: state.metric, ref: state.reference, t: state.temperature });
  if (Object.keys(state.filter).length) params.set("filter", JSON.stringify(state.filter));
  if (state.query?.id !== undefined) params.set("id", state.query.id);
  else if (state.query?.image) params.set("img", state.query.image); // a short handle, not kilobytes of logits
  else if (state.query?.logits) params.set("logits", state.query.logits.join(","));
  const url = `${location.pathname}?${params}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function syncForm() {
  $("index").value = state.index;
  $("k").value = state.k;
  $("metric").value = state.metric;
  $("temperature").value = state.temperature;
  $("reference").value = state.reference;
  $("query-id").value = state.query?.id ?? "";
  showView(state.view);
}

function readForm() {
  state.index = $("index").value;
  state.k = Number($("k").value) || 10;
  state.metric = $("metric").value;
  state.temperature = Number($("temperature").value) || 1;
  state.reference = $("reference").value;
}

function showView(view) {
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
    const tab = document.querySelector(`.tab[data-view=${name}]`);
    tab.setAttribute("aria-selected", String(name === view));
    tab.classList.toggle("current", name === view);
  }
}

function context() {
  const index = currentIndex();
  return { index, prefix: index ? indexPrefix(index.name) : "", labels: index ? page.labels[index.model] ?? [] : [] };
}

// -- the search ------------------------------------------------------------------------------------------------

function currentIndex() {
  return page.indexes.find((index) => index.name === state.index);
}

async function labelsOf(index) {
  return page.labels[index.model] ?? [];
}

async function queryLogits(prefix) {
  if (state.query.logits) {
    const title = page.imageUrl || state.query.image ? "Query: the uploaded image" : "Query: the given logits";
    return { logits: state.query.logits, title, thumb: page.imageUrl };
  }
  const item = await getJson(`${prefix}/items/${encodeId(state.query.id)}`);
  page.items.set(item.id, item);
  return { logits: item.logits, title: `Query: ${item.id}`, thumb: await thumbnailUrl(prefix, item.id) };
}

async function run() {
  showError("");
  if (!state.query) return;
  const index = currentIndex();
  if (!index) throw new ApiError(404, `no index named ${JSON.stringify(state.index)}`, "/v1/indexes");
  const prefix = indexPrefix(index.name);
  const labels = await labelsOf(index);
  hideResults(); // nothing of the previous query stays on screen if this one fails
  const query = await queryLogits(prefix);
  if (!state.query.logits) page.imageUrl = null;
  const body = { k: state.k, metric: state.metric, temperature: state.temperature, filter: state.filter };
  if (!Object.keys(state.filter).length) delete body.filter;
  const sent = state.query.id !== undefined ? { id: state.query.id } : { logits: state.query.logits };
  const [found, agreement] = await Promise.all([
    postJson(`${prefix}/search`, { queries: [sent], ...body, describe: true }),
    postJson(`${prefix}/search/agreement`, { query: sent, ...body, reference: state.reference, temperatures: SWEEP }),
  ]);
  page.last = { index: index.name, query: sent, request: body, results: found, agreement };
  page.compared = [];
  renderQuery({ ...query, labels, temperature: state.temperature });
  renderAgreement(agreement, labels, pick);
  const hits = found.results[0];
  renderResults(hits, { metric: found.metric, onPick: pick, onCompare: toggleCompare, compared: page.compared });
  renderChips(state.filter, chipCandidates(hits, labels), { onAdd: addFilter, onRemove: removeFilter, labels });
  for (const hit of hits) setPredicted(hit.id, labels[hit.predicted] ?? String(hit.predicted));
  // One request per thumbnail the hits have: the search said which do (k + 2 requests a search, at most).
  await Promise.all(hits.filter((hit) => hit.thumbnail).map(async (hit) => setThumbnail(hit.id, await thumbnailUrl(prefix, hit.id))));
}

function chipCandidates(hits, labels) {
  const seen = new Map();
  for (const hit of hits) {
    for (const [key, value] of Object.entries(hit.metadata)) {
      if (["string", "number", "boolean"].includes(typeof value) && key !== "path") seen.set(`${key}\u0000${JSON.stringify(value)}`, [key, value]);
    }
  }
  if (state.query?.logits || page.items.has(state.query?.id)) {
    const logits = state.query.logits ?? page.items.get(state.query.id).logits;
    seen.set("predicted", ["predicted", argmax(logits)]);
  }
  return [...seen.values()].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1])));
}

// -- actions ---------------------------------------------------------------------------------------------------

async function act(change) {
  try {
    await change();
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  }
}

function searchWith(query) {
  return act(async () => {
    readForm();
    state.query = query;
    writeUrl(true);
    syncForm();
    await run();
  });
}

function pick(id) {
  page.imageUrl = null;
  state.view = "search";
  return searchWith({ id });
}

function addFilter(key, value) {
  state.filter = { ...state.filter, [key]: value };
  writeUrl(true);
  return act(run);
}

function removeFilter(key) {
  const { [key]: _, ...rest } = state.filter;
  state.filter = rest;
  writeUrl(true);
  return act(run);
}

function toggleCompare(id) {
  page.compared = page.compared.includes(id) ? page.compared.filter((x) => x !== id) : [...page.compared, id].slice(-2);
  for (const box of document.querySelectorAll(".result")) {
    box.querySelector("input[type=checkbox]").checked = page.compared.includes(box.dataset.id);
  }
  return act(async () => {
    if (page.compared.length !== 2) return renderComparison(null);
    const { prefix } = context();
    const [a, b] = await Promise.all(page.compared.map(async (x) => page.items.get(x) ?? getJson(`${prefix}/items/${encodeId(x)}`)));
    const answer = await postJson("/v1/divergence", { a: [a.logits], b: [b.logits], temperature: state.temperature });
    renderComparison(a.id, b.id, answer.values);
  });
}

async function searchImage(file) {
  await act(async () => {
    readForm();
    const index = currentIndex();
    if (!index) throw new ApiError(404, "choose an index first", "/v1/indexes");
    const embedded = await postFiles(`/v1/models/${encodeURIComponent(index.model)}/embed`, "files", [file]);
    if (page.imageUrl) URL.revokeObjectURL(page.imageUrl);
    page.imageUrl = URL.createObjectURL(file);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    const handle = [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem(IMAGE_STORAGE + handle, JSON.stringify(embedded.logits[0]));
    state.query = { logits: embedded.logits[0], image: handle };
    writeUrl(true);
    syncForm();
    await run();
  });
}

function searchPasted() {
  const text = $("query-logits").value.trim().replace(/^\[|\]$/g, "");
  const logits = text.split(/[\s,;]+/).filter(Boolean).map(Number);
  if (!logits.length || logits.some((v) => !Number.isFinite(v))) {
    showError("paste the logits as numbers separated by commas or spaces, one per class");
    return;
  }
  page.imageUrl = null;
  return searchWith({ logits });
}

function download() {
  if (!page.last) return;
  const blob = new Blob([JSON.stringify(page.last, null, 2)], { type: "application/json" });
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: "logit-search-results.json" });
  link.click();
  URL.revokeObjectURL(link.href);
}

// -- start -----------------------------------------------------------------------------------------------------

async function loadCatalog() {
  let indexes, models, info;
  try {
    // The version is a nicety: the default index may be unavailable while others serve.
    [{ indexes }, { models }, info] = await Promise.all([getJson("/v1/indexes"), getJson("/v1/models"), getJson("/v1/info").catch(() => null)]);
  } catch (err) {
    $("footer").textContent = "the service did not answer: reload once it is up";
    throw err;
  }
  page.indexes = indexes;
  page.labels = Object.fromEntries(models.map((model) => [model.name, model.labels]));
  const select = $("index");
  select.replaceChildren(...indexes.map((index) => new Option(`${index.name} (${index.model}, ${index.count ?? "unavailable"})`, index.name)));
  if (!state.index || !currentIndex()) state.index = (indexes.find((i) => i.name === "default") ?? indexes[0])?.name ?? "";
  page.version = info?.version ?? page.version;
  // Drawn last, nothing awaited after it: the caller syncs the form in the same task, so nothing typed once the
  // footer shows is overwritten.
  const index = currentIndex();
  if (index) renderFooter(index, page.version);
}

function wire() {
  const key = $("api-key");
  key.value = apiKey();
  key.addEventListener("change", () => {
    setApiKey(key.value.trim());
    act(start);
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("query-id").value.trim();
    if (id) searchWith({ id });
  });
  $("search-logits").addEventListener("click", searchPasted);
  $("file").addEventListener("change", (e) => e.target.files[0] && searchImage(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) searchImage(file);
  });
  for (const id of ["k", "metric", "temperature", "reference"]) {
    $(id).addEventListener("change", () => act(async () => {
      readForm();
      writeUrl(true);
      await run();
    }));
  }
  $("index").addEventListener("change", () => act(async () => {
    readForm();
    state.query = null; // another index: the previous one's query and filters mean nothing here
    state.filter = {};
    hideResults();
    renderChips({}, [], { onAdd: addFilter, onRemove: removeFilter });
    writeUrl(true);
    const index = currentIndex();
    if (index) renderFooter(index, page.version);
    await refreshView();
  }));
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => act(async () => {
      state.view = tab.dataset.view;
      writeUrl(true);
      showView(state.view);
      await refreshView();
    }));
  }
  const switchTo = async (view, then) => {
    state.view = view;
    writeUrl(true);
    showView(view);
    await then();
  };
  wireViews({ context, act, searchFrom: pick, showView: switchTo, reloadCatalog: async () => { await loadCatalog(); syncForm(); } });
  $("download").addEventListener("click", download);
  window.addEventListener("popstate", () => act(async () => {
    const problem = readUrl();
    syncForm();
    if (problem) showError(problem);
    else await refreshView();
  }));
}

// The view shown: search runs the query of the URL; the others load what they show.
async function refreshView() {
  if (state.view === "search") return run();
  return showOther(state.view);
}

async function start() {
  const problem = readUrl();
  await loadCatalog();
  syncForm();
  writeUrl(false);
  if (problem) showError(problem);
  else await refreshView();
}

wire();
act(start);
