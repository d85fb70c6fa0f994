// fusionrec web page: pick a user, see the history, the recommendations and why.
"use strict";

const $ = (id) => document.getElementById(id);

// the read key when the server is private (asked once, kept for this tab only)
let readKey = sessionStorage.getItem("fusionrec-key") || "";
// every new request for a user bumps this: answers to older ones are dropped, never shown stale
let generation = 0;

async function api(path) {
  const headers = { Accept: "application/json" };
  if (readKey) headers["X-API-Key"] = readKey;
  let res = await fetch(path, { headers });
  if (res.status === 401 && !readKey) {
    const key = window.prompt("This server needs an API key to read:");
    if (key) {
      readKey = key;
      sessionStorage.setItem("fusionrec-key", key);
      return api(path);
    }
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new Error((body.detail || res.statusText) + (body.hint ? " (" + body.hint + ")" : ""));
  }
  return body;
}

function card(item, onClick) {
  const li = document.createElement("li");
  li.dataset.item = String(item.item);
  if (item.poster) {
    const img = document.createElement("img");
    img.src = item.poster;
    img.alt = "";
    img.loading = "lazy";
    li.appendChild(img);
  }
  const name = document.createElement("span");
  name.className = "title";
  name.textContent = item.title || String(item.item);
  li.appendChild(name);
  if (item.score !== null && item.score !== undefined) {
    const s = document.createElement("span");
    s.className = "score";
    s.textContent = Number(item.score).toFixed(3);
    li.appendChild(s);
  }
  if (onClick) li.addEventListener("click", () => onClick(item));
  return li;
}

function fill(listId, items, onClick) {
  const ol = $(listId);
  ol.replaceChildren(...items.map((it) => card(it, onClick)));
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function resetExplain() {
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.textContent = "Click a recommendation to see why.";
  $("explain").replaceChildren(hint);
}

// how strongly a cited item is linked, in words (relative to the strongest one; never a raw number)
function linkWord(rel, source) {
  const what = source === "contribution" ? "of the score" : "similarity";
  if (rel >= 0.75) return `strongest ${what}`;
  if (rel >= 0.4) return `strong ${what}`;
  return `some ${what}`;
}

async function explain(user, item) {
  const box = $("explain");
  const mine = generation;
  box.replaceChildren(Object.assign(document.createElement("p"), { className: "hint", textContent: "loading…" }));
  try {
    const e = await api(`/explain?user=${encodeURIComponent(user)}&item=${encodeURIComponent(item.item)}`);
    if (mine !== generation) return; // the user changed meanwhile
    // words only: the sentence (cited titles, shared labels / words, modality shares), then the cited titles
    const say = document.createElement("p");
    say.id = "why-sentence";
    say.textContent = e.sentence || `${item.title || item.item}`;
    const ul = document.createElement("ul");
    ul.id = "because";
    const top = Math.max(...e.similar_history.map((h) => Math.abs(h.similarity)), 1e-12);
    for (const h of e.similar_history) {
      const li = document.createElement("li");
      li.textContent = `${h.title || h.item} (${linkWord(h.similarity / top, e.source)})`;
      ul.appendChild(li);
    }
    box.replaceChildren(say, ul);
  } catch (err) {
    if (mine !== generation) return;
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = String(err.message || err);
    box.replaceChildren(p);
  }
}

async function show(user, k) {
  const mine = ++generation;
  setStatus("loading…");
  resetExplain(); // an explanation belongs to the previous answer: never keep it
  try {
    const [hist, recs] = await Promise.all([
      api(`/users/${encodeURIComponent(user)}/history?limit=20`),
      api(`/recommend?user=${encodeURIComponent(user)}&k=${k}`),
    ]);
    if (mine !== generation) return;
    fill("history", hist.items);
    fill("recs", recs.items, (item) => explain(user, item));
    setStatus(`${recs.items.length} recommendations for ${user} (${recs.index})`);
  } catch (err) {
    if (mine !== generation) return;
    fill("history", []);
    fill("recs", []);
    setStatus(String(err.message || err), true);
  }
}

async function init() {
  try {
    const u = await api("/users?limit=200");
    $("users").replaceChildren(...u.users.map((id) => Object.assign(document.createElement("option"), { value: String(id) })));
    if (u.users.length && !$("user").value) $("user").value = String(u.users[0]);
  } catch (err) {
    setStatus(String(err.message || err), true);
  }
  $("pick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    show($("user").value.trim(), Number($("k").value) || 10);
  });
  document.body.dataset.ready = "1";
}

init();
