// The try page: list the models with the typed API key, tag the pasted text, show the entities
// inline (a coloured mark per entity with its label and score, as displaCy does) and in a table.
// It calls the public API with relative URLs and builds the DOM from text nodes only, so nothing
// from the model or the user is ever parsed as HTML. The key lives in this tab's memory only.
"use strict";

const $ = (id) => document.getElementById(id);

// displaCy's colours for the usual labels; any other label gets a stable colour of its own.
const COLOURS = {
  PER: "#aa9cfc", PERSON: "#aa9cfc", ORG: "#7aecec", LOC: "#ff9561", GEO: "#ff9561",
  GPE: "#feca74", MISC: "#c887fb", NORP: "#c887fb", FAC: "#9cc9cc", EVE: "#ffeb80", EVENT: "#ffeb80",
  TIM: "#bfe1d9", DATE: "#bfe1d9", TIME: "#bfe1d9", ART: "#e4e7d2", WORK_OF_ART: "#f0d0ff",
  NAT: "#bbdefb", PRODUCT: "#bfeeb7", LAW: "#ff8197", LANGUAGE: "#ff8197",
};

function colour(label) {
  const known = COLOURS[label.toUpperCase()];
  if (known) return known;
  let hash = 0;
  for (const ch of label) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 70%, 80%)`;
}

function headers(key, json) {
  const h = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

// One line a person can act on, from the API's error answers (they always carry `detail`).
async function problem(response) {
  let detail = "";
  try {
    const body = await response.json();
    detail = typeof body.detail === "string" ? body.detail
      : Array.isArray(body.detail) ? body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")
      : "";
  } catch (_) { /* not JSON: the status says enough */ }
  if (response.status === 401) return "API key rejected: check the key and try again.";
  if (response.status === 503) {
    const retry = response.headers.get("Retry-After");
    return `The model is busy${retry ? `; retry in ${retry} s` : ""}. ${detail}`.trim();
  }
  return `Error ${response.status}${detail ? `: ${detail}` : ""}`;
}

function say(message) {
  const status = $("status");
  status.textContent = message || "";
  status.hidden = !message;
}

let models = new Map();

async function loadModels(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  say("");
  $("connect").disabled = true;
  try {
    const response = await fetch("v1/models", { headers: headers(key, false) });
    if (!response.ok) throw new Error(await problem(response));
    const listing = await response.json();
    models = new Map(listing.models.map((m) => [m.name, m]));
    const select = $("model");
    const previous = select.value;
    select.replaceChildren(...listing.models.map((m) => {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = `${m.name} (${m.kind}, v${m.version})`;
      return option;
    }));
    if (models.has(previous)) select.value = previous;
    select.disabled = models.size === 0;
    $("tag").disabled = models.size === 0;
    if (models.size === 0) say("This server serves no model.");
    describeModel();
  } catch (error) {
    say(error.message);
  } finally {
    $("connect").disabled = false;
  }
}

function describeModel() {
  const model = models.get($("model").value);
  const labels = model ? [...new Set(model.labels.filter((l) => l !== "O").map((l) => l.replace(/^[BIESL]-/, "")))] : [];
  $("model-info").textContent = model ? `labels: ${labels.join(", ") || "none"}` : "";
}

// The API's offsets count Unicode code points (Python string indices); JavaScript strings count
// UTF-16 units, so the text is split into code points before slicing.
function render(text, entities) {
  const chars = Array.from(text);
  const marked = $("marked");
  const rows = $("entities").tBodies[0];
  marked.replaceChildren();
  rows.replaceChildren();
  let at = 0;
  const sorted = [...entities].sort((a, b) => a.start - b.start);
  for (const entity of sorted) {
    if (entity.start < at || entity.end > chars.length) continue;  // overlapping or out of range
    marked.append(chars.slice(at, entity.start).join(""));
    const mark = document.createElement("mark");
    mark.className = "entity";
    mark.style.setProperty("--entity-colour", colour(entity.entity_group));
    const span = document.createElement("span");
    span.className = "entity-text";
    span.textContent = chars.slice(entity.start, entity.end).join("");
    const label = document.createElement("span");
    label.className = "entity-label";
    label.textContent = entity.entity_group;
    const score = document.createElement("span");
    score.className = "entity-score";
    score.textContent = entity.score.toFixed(2);
    mark.title = `${entity.entity_group} ${entity.score.toFixed(4)} [${entity.start}, ${entity.end})`;
    mark.append(span, label, score);
    marked.append(mark);
    at = entity.end;

    const row = rows.insertRow();
    for (const value of [entity.entity_group, entity.word, entity.score.toFixed(4), `${entity.start}–${entity.end}`]) {
      row.insertCell().textContent = value;
    }
  }
  marked.append(chars.slice(at).join(""));
  $("entities").hidden = sorted.length === 0;
  $("result").hidden = false;
}

async function tag(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  const name = $("model").value;
  const text = $("text").value;
  if (!key || !name) return;
  say("");
  $("tag").disabled = true;
  $("timing").textContent = "tagging…";
  const started = performance.now();
  try {
    const response = await fetch(`v1/models/${encodeURIComponent(name)}/tag`, {
      method: "POST", headers: headers(key, true), body: JSON.stringify({ text }),
    });
    if (!response.ok) throw new Error(await problem(response));
    const answer = await response.json();
    const entities = answer.results[0].entities;
    render(text, entities);
    const ms = Math.round(performance.now() - started);
    $("timing").textContent =
      `${answer.model} v${answer.version}: ${entities.length} ${entities.length === 1 ? "entity" : "entities"} in ${ms} ms`;
  } catch (error) {
    $("timing").textContent = "";
    say(error.message);
  } finally {
    $("tag").disabled = false;
  }
}

async function offerDocs() {
  // The API docs link is shown only where they are served openly (`docs: public`).
  try {
    const response = await fetch("openapi.json", { method: "GET" });
    $("docs-link").hidden = !response.ok;
  } catch (_) { /* leave it hidden */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("connect-form").addEventListener("submit", loadModels);
  $("tag-form").addEventListener("submit", tag);
  $("model").addEventListener("change", describeModel);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("tag-form").requestSubmit();
  });
  offerDocs();
});
