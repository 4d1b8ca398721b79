// qkv attention explorer: plain JavaScript, no libraries. Talks to qkv serve:
// POST /v1/translate (n-best with scores) and POST /v1/attention (every
// attention of the sentence, and q, k, v of one layer/head).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { att: null, kind: "cross", layer: 0, head: 0, query: 0, text: "", translation: "", finder: null };

const KIND_HELP = {
  encoder_self: "Encoder self-attention: every source token (row) looks at every source token (column). " +
    "This is how the encoder mixes context into each word before any translating happens.",
  decoder_self: "Decoder self-attention: the decoder position on each row (labelled with the token it reads: " +
    "the start token, then the translation so far) looks only at earlier positions; the upper triangle is 0 " +
    "(the causal mask), because when translating the future is not written yet.",
  cross: "Cross-attention: each decoder position (row, labelled with the token it reads; hover to see the token " +
    "it predicts) looks at the source tokens (columns). This is where the decoder decides which source words " +
    "to translate next.",
};

function showError(msg) {
  const e = $("error");
  e.textContent = msg;
  e.hidden = !msg;
}

async function api(path, body) {
  let r;
  try {
    r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (err) {
    throw new Error(`${path}: the server could not be reached (${err.message})`);
  }
  let j = null;
  try { j = await r.json(); } catch (err) { /* not JSON */ }
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}: ${j && j.error ? j.error : r.statusText}`);
  if (!j) throw new Error(`${path}: the reply is not JSON`);
  return j;
}

function piece(t) { return t.replace(/\u2581/g, "\u2009").trim() || t; }

function color(w, max) {
  const x = max > 0 ? Math.min(1, w / max) : 0;
  const l = 98 - 62 * Math.sqrt(x); // lightness: white to dark blue
  return `hsl(218, 70%, ${l}%)`;
}

// weights of one head (h = -1: the mean over heads) as rows [nq][nk]
function matrix(block, layer, h) {
  const { heads: H, queries: nq, keys: nk, weights: w } = block;
  const m = [];
  for (let i = 0; i < nq; i++) {
    const row = new Array(nk).fill(0);
    for (let j = 0; j < nk; j++) {
      if (h >= 0) row[j] = w[((layer * H + h) * nq + i) * nk + j];
      else { let s = 0; for (let k = 0; k < H; k++) s += w[((layer * H + k) * nq + i) * nk + j]; row[j] = s / H; }
    }
    m.push(row);
  }
  return m;
}

function labels(kind) {
  const a = state.att;
  if (kind === "encoder_self") return { q: a.src_tokens, k: a.src_tokens, qTitle: a.src_tokens };
  const qTitle = a.dec_tokens.map((t, i) => `reads ${piece(t)}, predicts ${piece(a.tgt_tokens[i])}`);
  return { q: a.dec_tokens, k: kind === "cross" ? a.src_tokens : a.dec_tokens, qTitle };
}

// ---- heatmaps ---------------------------------------------------------------

function highlight(kind, qi, kj) {
  document.querySelectorAll("#heatmaps .hl").forEach((e) => e.classList.remove("hl"));
  if (qi === null && kj === null) return;
  document.querySelectorAll("#heatmaps .cell").forEach((c) => {
    if ((qi !== null && +c.dataset.q === qi) || (kj !== null && +c.dataset.k === kj)) c.classList.add("hl");
  });
  document.querySelectorAll("#heatmaps .lab").forEach((l) => {
    if ((qi !== null && l.dataset.q !== undefined && +l.dataset.q === qi) ||
        (kj !== null && l.dataset.k !== undefined && +l.dataset.k === kj)) l.classList.add("hl");
  });
}

function panel(kind, layer, h) {
  const block = state.att[kind], lab = labels(kind), m = matrix(block, layer, h);
  const nq = block.queries, nk = block.keys;
  let max = 0;
  m.forEach((r) => r.forEach((v) => { if (v > max) max = v; }));
  const p = document.createElement("div");
  p.className = "panel" + (layer === state.layer && h === state.head ? " selected" : "");
  p.dataset.layer = layer;
  p.dataset.head = h;
  const t = document.createElement("div");
  t.className = "title";
  t.textContent = h >= 0 ? `layer ${layer + 1} head ${h + 1}` : `layer ${layer + 1} mean`;
  p.appendChild(t);
  const g = document.createElement("div");
  g.className = "grid";
  g.style.gridTemplateColumns = `auto repeat(${nk}, var(--cell, 14px))`;
  const corner = document.createElement("div");
  g.appendChild(corner);
  for (let j = 0; j < nk; j++) {
    const l = document.createElement("div");
    l.className = "lab col";
    l.dataset.k = j;
    l.textContent = piece(lab.k[j]);
    l.title = lab.k[j];
    g.appendChild(l);
  }
  for (let i = 0; i < nq; i++) {
    const l = document.createElement("div");
    l.className = "lab row";
    l.dataset.q = i;
    l.textContent = piece(lab.q[i]);
    l.title = lab.qTitle[i];
    l.addEventListener("click", (ev) => { ev.stopPropagation(); state.query = i; selectHead(layer, h >= 0 ? h : state.head); });
    g.appendChild(l);
    for (let j = 0; j < nk; j++) {
      const c = document.createElement("div");
      c.className = "cell";
      c.dataset.q = i;
      c.dataset.k = j;
      c.style.background = color(m[i][j], max);
      c.title = `${piece(lab.q[i])} → ${piece(lab.k[j])}: ${m[i][j].toFixed(3)}`;
      g.appendChild(c);
    }
  }
  g.addEventListener("mouseover", (ev) => {
    const d = ev.target.dataset;
    if (d.q !== undefined || d.k !== undefined)
      highlight(kind, d.q !== undefined ? +d.q : null, d.k !== undefined ? +d.k : null);
  });
  g.addEventListener("mouseleave", () => highlight(kind, null, null));
  p.appendChild(g);
  p.addEventListener("click", () => { if (h >= 0) selectHead(layer, h); });
  return p;
}

function drawHeatmaps() {
  const kind = state.kind, block = state.att[kind], box = $("heatmaps");
  $("kind-help").textContent = KIND_HELP[kind];
  box.innerHTML = "";
  const n = Math.max(block.queries, block.keys);
  box.style.setProperty("--cell", `${n > 24 ? 8 : n > 14 ? 11 : 14}px`);
  for (let l = 0; l < block.layers; l++) {
    const row = document.createElement("div");
    row.className = "layer-row";
    for (let h = 0; h < block.heads; h++) row.appendChild(panel(kind, l, h));
    if (block.heads > 1) row.appendChild(panel(kind, l, -1));
    box.appendChild(row);
  }
}

// ---- head view ----------------------------------------------------------------

function drawHeadView() {
  const kind = state.kind, block = state.att[kind], lab = labels(kind);
  const m = matrix(block, state.layer, state.head), nq = block.queries, nk = block.keys;
  const rowH = 22, W = 460, top = 20, x1 = 150, x2 = W - 150;
  const Hh = top + Math.max(nq, nk) * rowH + 10;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${Hh}`);
  svg.setAttribute("width", W);
  svg.setAttribute("height", Hh);
  const lines = [];
  for (let i = 0; i < nq; i++)
    for (let j = 0; j < nk; j++) {
      if (m[i][j] < 0.01) continue;
      const ln = document.createElementNS(ns, "line");
      ln.setAttribute("x1", x1 + 4); ln.setAttribute("y1", top + i * rowH - 4);
      ln.setAttribute("x2", x2 - 4); ln.setAttribute("y2", top + j * rowH - 4);
      ln.setAttribute("stroke", "#2456a6");
      ln.setAttribute("stroke-width", (0.5 + 4 * m[i][j]).toFixed(2));
      ln.setAttribute("stroke-opacity", Math.min(1, 0.1 + m[i][j]).toFixed(2));
      ln.dataset.q = i; ln.dataset.k = j;
      svg.appendChild(ln);
      lines.push(ln);
    }
  const focus = (q, k) => {
    lines.forEach((ln) => {
      const on = (q === null && k === null) || +ln.dataset.q === q || +ln.dataset.k === k;
      ln.style.display = on ? "" : "none";
    });
    svg.querySelectorAll("text").forEach((t) => t.classList.toggle("hl",
      (q !== null && t.dataset.q !== undefined && +t.dataset.q === q) ||
      (k !== null && t.dataset.k !== undefined && +t.dataset.k === k)));
  };
  const addText = (x, y, s, anchor, attr, idx, title) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor);
    t.textContent = piece(s);
    t.dataset[attr] = idx;
    const ti = document.createElementNS(ns, "title"); ti.textContent = title; t.appendChild(ti);
    t.addEventListener("mouseenter", () => focus(attr === "q" ? idx : null, attr === "k" ? idx : null));
    t.addEventListener("mouseleave", () => focus(null, null));
    if (attr === "q") {
      if (idx === state.query) t.classList.add("query-sel");
      t.addEventListener("click", () => { state.query = idx; loadVectors(); });
    }
    svg.appendChild(t);
  };
  for (let i = 0; i < nq; i++) addText(x1, top + i * rowH, lab.q[i], "end", "q", i, lab.qTitle[i]);
  for (let j = 0; j < nk; j++) addText(x2, top + j * rowH, lab.k[j], "start", "k", j, lab.k[j]);
  const box = $("headview");
  box.innerHTML = "";
  box.appendChild(svg);
}

function fillSelect(sel, n, value, name) {
  sel.innerHTML = "";
  for (let i = 0; i < n; i++) {
    const o = document.createElement("option");
    o.value = i; o.textContent = `${name} ${i + 1}`;
    sel.appendChild(o);
  }
  sel.value = value;
}

// ---- one query step by step ------------------------------------------------------

function fmt(x) { return Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(3); }

function drawStep() {
  const kind = state.kind, block = state.att[kind], lab = labels(kind), v = block.vectors, box = $("step");
  if (!v || v.layer !== state.layer || v.head !== state.head) { box.textContent = "loading the vectors…"; return; }
  const D = block.head_dim, nk = block.keys, qi = Math.min(state.query, block.queries - 1);
  const q = v.q.slice(qi * D, qi * D + D);
  const scale = 1 / Math.sqrt(D);
  const causal = kind === "decoder_self";
  const dots = [], scaled = [];
  for (let j = 0; j < nk; j++) {
    let d = 0;
    for (let e = 0; e < D; e++) d += q[e] * v.k[j * D + e];
    dots.push(d); scaled.push(causal && j > qi ? -Infinity : d * scale);
  }
  const mx = Math.max(...scaled.filter(isFinite));
  const ex = scaled.map((s) => (isFinite(s) ? Math.exp(s - mx) : 0));
  const z = ex.reduce((a, b) => a + b, 0);
  const p = ex.map((e) => e / z);
  const model = matrix(block, state.layer, state.head)[qi];
  const out = new Array(D).fill(0);
  for (let j = 0; j < nk; j++) for (let e = 0; e < D; e++) out[e] += p[j] * v.v[j * D + e];
  const maxDiff = Math.max(...p.map((x, j) => Math.abs(x - model[j])));
  let html = `<p>Layer ${state.layer + 1}, head ${state.head + 1}, query <b>${escapeHtml(piece(lab.q[qi]))}</b>` +
    ` (d = ${D}, scale 1/√d = ${scale.toFixed(4)}).</p>`;
  html += `<div class="vec">q = [${q.map(fmt).join(", ")}]</div>`;
  html += `<table><thead><tr><th>key</th><th class="num">q·k</th><th class="num">q·k/√d</th>` +
    `<th class="num">softmax</th><th></th><th class="num">model's weight</th></tr></thead><tbody>`;
  for (let j = 0; j < nk; j++) {
    const masked = !isFinite(scaled[j]);
    html += `<tr><td>${escapeHtml(piece(lab.k[j]))}</td><td class="num">${masked ? "masked" : fmt(dots[j])}</td>` +
      `<td class="num">${masked ? "−∞" : fmt(scaled[j])}</td><td class="num">${p[j].toFixed(4)}</td>` +
      `<td><span class="bar" style="width:${(p[j] * 120).toFixed(1)}px"></span></td>` +
      `<td class="num">${model[j].toFixed(4)}</td></tr>`;
  }
  html += `</tbody></table>`;
  html += `<p>Softmax of the scores computed here from q and k agrees with the model's weights to ${maxDiff.toExponential(1)}.</p>`;
  html += `<p>Output of this head for the query = Σ<sub>j</sub> softmax<sub>j</sub> · v<sub>j</sub>:</p>`;
  html += `<div class="vec">[${out.map(fmt).join(", ")}]</div>`;
  html += `<p class="help">The heads' outputs are concatenated and projected back to the model's width; that is ` +
    `what the next layer receives for this token.</p>`;
  box.innerHTML = html;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// ---- which heads look from one word to others --------------------------------------

function words(tokens) { // piece index -> word index, and word strings
  const map = [], ws = [];
  tokens.forEach((t, i) => {
    const control = /^<.*>$/.test(t), prevControl = i > 0 && /^<.*>$/.test(tokens[i - 1]);
    if (i === 0 || t.startsWith("\u2581") || control || prevControl) ws.push("");
    map.push(ws.length - 1);
    ws[ws.length - 1] += t.replace(/\u2581/g, "");
  });
  return { map, ws };
}

function drawFinder() {
  const f = state.finder, box = $("finder-box");
  if (!f) { box.hidden = true; return; }
  const block = state.att.encoder_self, toks = state.att.src_tokens, { map, ws } = words(toks);
  const qw = ws.findIndex((w) => w.toLowerCase() === f.query), keys = f.keys.map((k) => ws.findIndex((w) => w.toLowerCase() === k));
  if (qw < 0 || keys.some((k) => k < 0)) { box.hidden = true; return; }
  box.hidden = false;
  const rows = [];
  for (let l = 0; l < block.layers; l++)
    for (let h = 0; h < block.heads; h++) {
      const m = matrix(block, l, h), mass = keys.map(() => 0);
      let nqp = 0;
      for (let i = 0; i < toks.length; i++) {
        if (map[i] !== qw) continue;
        nqp++;
        for (let j = 0; j < toks.length; j++) { const k = keys.indexOf(map[j]); if (k >= 0) mass[k] += m[i][j]; }
      }
      rows.push({ l, h, mass: mass.map((x) => x / nqp) });
    }
  let html = `<p class="help">Encoder self-attention from “${escapeHtml(f.query)}” to each word (the sum over its pieces, ` +
    `averaged over the pieces of “${escapeHtml(f.query)}”). The head that looks most at each word is in bold; click a row to show that head.</p>`;
  html += `<table><thead><tr><th>layer</th><th>head</th>${f.keys.map((k) => `<th class="num">→ ${escapeHtml(k)}</th>`).join("")}</tr></thead><tbody>`;
  const best = f.keys.map((_, k) => rows.reduce((b, r, i) => (r.mass[k] > rows[b].mass[k] ? i : b), 0));
  rows.forEach((r, i) => {
    html += `<tr data-l="${r.l}" data-h="${r.h}"><td>${r.l + 1}</td><td>${r.h + 1}</td>` +
      r.mass.map((x, k) => `<td class="num${best[k] === i ? " best" : ""}">${x.toFixed(3)}</td>`).join("") + `</tr>`;
  });
  html += `</tbody></table>`;
  $("finder").innerHTML = html;
  $("finder").querySelectorAll("tr[data-l]").forEach((tr) => tr.addEventListener("click", () => {
    state.kind = "encoder_self"; $("kind").value = "encoder_self";
    state.query = map.indexOf(qw);
    selectHead(+tr.dataset.l, +tr.dataset.h);
  }));
}

// ---- flow ------------------------------------------------------------------------------

function selectHead(layer, head) {
  state.layer = layer; state.head = head;
  drawAll();
  loadVectors();
}

function drawAll() {
  const block = state.att[state.kind];
  if (state.layer >= block.layers) state.layer = 0;
  if (state.head >= block.heads) state.head = 0;
  if (state.query >= block.queries) state.query = 0;
  fillSelect($("hv-layer"), block.layers, state.layer, "layer");
  fillSelect($("hv-head"), block.heads, state.head, "head");
  drawHeatmaps();
  drawHeadView();
  drawStep();
  drawFinder();
}

async function loadVectors() {
  drawStep();
  try {
    const a = await api("/v1/attention", { q: state.text, target: state.translation, model: $("model").value,
      layer: state.layer, head: state.head });
    for (const k of ["encoder_self", "decoder_self", "cross"]) state.att[k].vectors = a[k].vectors;
    showError("");
    drawStep();
  } catch (err) { showError(err.message); }
}

async function run(text) {
  showError("");
  state.text = text;
  const beam = Math.max(1, Math.min(16, parseInt($("beam").value, 10) || 4));
  $("status").textContent = "translating…";
  $("go").disabled = true;
  try {
    const model = $("model").value;
    const tr = await api("/v1/translate", { q: text, model, beam_size: beam, n_best: beam });
    const t = tr.translations[0];
    state.translation = t.text;
    $("translation").textContent = t.text;
    const tb = $("nbest").querySelector("tbody");
    tb.innerHTML = "";
    t.hypotheses.forEach((h, i) => {
      const r = document.createElement("tr");
      r.innerHTML = `<td>${i + 1}</td><td></td><td class="num">${h.score.toFixed(4)}</td>` +
        `<td class="num">${h.logprob.toFixed(4)}</td><td class="num">${h.tokens}</td>`;
      r.children[1].textContent = h.text;
      tb.appendChild(r);
    });
    $("result").hidden = false;
    $("status").textContent = "computing attention…";
    const att = await api("/v1/attention", { q: text, target: t.text, model, layer: state.layer, head: state.head });
    state.att = att;
    state.query = 0;
    $("attention").hidden = false;
    drawAll();
    $("status").textContent = `${att.src_tokens.length} source tokens, ${att.tgt_tokens.length} target tokens`;
  } catch (err) {
    showError(err.message);
    $("status").textContent = "";
  } finally {
    $("go").disabled = false;
  }
}

async function init() {
  try {
    const r = await fetch("/health");
    const h = await r.json();
    for (const m of h.models) {
      const o = document.createElement("option");
      o.value = m.name; o.textContent = `${m.name} (${m.source} → ${m.target})`;
      $("model").appendChild(o);
    }
  } catch (err) { showError(`/health: the server could not be reached (${err.message})`); }
  $("form").addEventListener("submit", (ev) => { ev.preventDefault(); state.finder = null; run($("text").value.trim()); });
  document.querySelectorAll(".example").forEach((b) => b.addEventListener("click", () => {
    $("text").value = b.dataset.text;
    state.finder = b.dataset.query ? { query: b.dataset.query, keys: b.dataset.keys.split(",") } : null;
    if (state.finder) { state.kind = "encoder_self"; $("kind").value = "encoder_self"; }
    run(b.dataset.text);
  }));
  $("kind").addEventListener("change", () => { state.kind = $("kind").value; if (state.att) { drawAll(); loadVectors(); } });
  $("hv-layer").addEventListener("change", () => selectHead(+$("hv-layer").value, state.head));
  $("hv-head").addEventListener("change", () => selectHead(state.layer, +$("hv-head").value));
}

init();
