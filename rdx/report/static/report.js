/* rdx report of one comparison. Reads window.RDX_REPORT (inline) and window.RDX_POINTS (points.js, loaded
 * after the first paint); thumbnails come from sprite pages next to the page. No network, no library. */
(function () {
  "use strict";
  const R = window.RDX_REPORT;
  const SIDES = ["A", "B"];
  const OTHER = { A: "B", B: "A" };
  const PAGE_SIZE = R.member_page_size || 200;
  const state = {
    points: null,
    concept: null,
    page: 0,
    selection: null,
    map: R.maps.includes("umap") ? "umap" : R.maps[0], // UMAP reads better than PCA when there is one
    colour: "label",
  };
  const api = { ready: false, state: state };
  window.rdxReport = api;

  // ---------------------------------------------------------------- helpers
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "html") node.innerHTML = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style") node.setAttribute("style", value);
      else node.setAttribute(key, value);
    }
    for (const child of [].concat(children || [])) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  const $ = (selector) => document.querySelector(selector);
  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (typeof value !== "number") return String(value);
    return value.toFixed(digits === undefined ? 3 : digits);
  }
  function labelName(label) {
    const name = R.label_names[String(label)];
    return name === undefined ? String(label) : name;
  }
  function labelColour(label) {
    return R.label_colours[String(label)] || "#888";
  }
  function conceptColour(index) {
    return R.concept_colours[(index - 1) % R.concept_colours.length];
  }
  function methodByLabel(label) {
    return R.methods.find((m) => m.label === label);
  }
  function sideName(side) {
    return R.models[side].name;
  }

  // A thumbnail: a div showing one tile of a sprite page (loaded by the browser when first shown).
  function thumb(image, size) {
    const T = R.thumbs;
    const page = Math.floor(image / T.per_page);
    const slot = image % T.per_page;
    const row = Math.floor(slot / T.columns);
    const col = slot % T.columns;
    const rows = Math.ceil(Math.min(T.per_page, R.n - page * T.per_page) / T.columns);
    return el("div", {
      class: "thumb",
      "data-image": image,
      title: `image ${image} · ${labelName(state.points ? state.points.labels[image] : "")}`,
      style:
        `width:${size}px;height:${size}px;background-image:url("${T.pages[page]}");` +
        `background-size:${T.columns * size}px ${rows * size}px;` +
        `background-position:${-col * size}px ${-row * size}px`,
    });
  }

  function labelBar(counts, total) {
    const bar = el("div", { class: "bar" });
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    for (const [label, count] of entries) {
      bar.appendChild(
        el("span", {
          style: `width:${(100 * count) / total}%;background:${labelColour(label)}`,
          title: `${labelName(label)}: ${count}`,
        })
      );
    }
    return bar;
  }
  function compositionText(counts, total) {
    return Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([label, count]) => `${labelName(label)} ${Math.round((100 * count) / total)}%`)
      .join(", ");
  }

  // a weights file by its last three path parts (training run, folder, file); the full path in the record
  function shortPath(text) {
    if (!text) return text;
    const parts = String(text).split(/[\\/]/);
    return parts.length > 3 ? "…/" + parts.slice(-3).join("/") : text;
  }

  // ---------------------------------------------------------------- overview
  function renderOverview() {
    const root = $("#overview");
    const models = el("div", { class: "models" });
    for (const side of SIDES) {
      const m = R.models[side];
      const rows = [
        ["name", m.name],
        ["kind", m.kind],
        ["weights", shortPath(m.weights || m.checkpoint)],
        ["training step", m.step === undefined ? null : `step ${m.step}, epoch ${m.epoch}`],
        ["validation accuracy", m.val_acc === undefined || m.val_acc === null ? null : fmt(100 * m.val_acc, 2) + " %"],
        ["layer · pooling", [m.layer, m.pooling].filter((x) => x).join(" · ") || null],
        ["feature dim", R.feature_dims[side]],
        ["probe accuracy", R.probe ? fmt(R.probe[side]) : null],
      ];
      const dl = el("dl", { class: "kv" });
      for (const [key, value] of rows) {
        if (value === null || value === undefined) continue;
        dl.append(el("dt", { text: key }), el("dd", { text: String(value) }));
      }
      models.appendChild(
        el("div", { class: "model-card", "data-side": side }, [el("h3", { text: `Model ${side}` }), dl])
      );
    }
    const dataset = el("dl", { class: "kv" });
    const facts = [
      ["image set", R.dataset.name],
      ["N", String(R.n)],
      ["labels", R.labels.map(labelName).join(", ")],
      ["CKA (linear)", R.cka === null ? null : fmt(R.cka)],
      ["probe agreement", R.probe ? fmt(R.probe.agreement) : null],
      ["planted difference", R.planted ? R.planted.description : null],
      ["run", R.task],
    ];
    for (const [key, value] of facts) {
      if (value === null || value === undefined) continue;
      dataset.append(el("dt", { text: key }), el("dd", { text: value }));
    }
    root.append(models, el("h3", { text: "Images and representations" }), dataset);
    root.append(el("h3", { text: "Scores of every method" }), scoresTable());
    root.append(
      el("p", {
        class: "muted small",
        text:
          "BSR: over the ordered image pairs of a grid explaining model M, the share with a smaller distance " +
          "in M than in the other model (0.5: a method that ignores the other model); mean over a side's " +
          "grids; mBSR: mean of both sides. TSD: mean distance difference over the same pairs. Tie rate: " +
          "share of tied pairs (lower is better). Click a column to sort; the best value per column is shaded.",
      })
    );
  }

  function scoresTable() {
    const columns = R.score_columns;
    const table = el("table", { class: "data", id: "scores-table" });
    const head = el("tr");
    head.appendChild(el("th", { class: "sortable", "data-key": "label", text: "method" }));
    for (const column of columns) {
      head.appendChild(el("th", { class: "sortable", "data-key": column.key, title: column.help, text: column.title }));
    }
    table.appendChild(el("thead", {}, head));
    const body = el("tbody");
    for (const method of R.methods) {
      const tr = el("tr", { "data-method": method.label, class: method.label === R.main ? "main" : null });
      tr.appendChild(el("td", { "data-value": method.label, text: method.label + (method.failed ? " (scoring failed)" : "") }));
      for (const column of columns) {
        const value = method.table[column.key];
        tr.appendChild(el("td", { "data-key": column.key, "data-value": value === null ? "" : value, text: fmt(value, column.digits) }));
      }
      body.appendChild(tr);
    }
    table.appendChild(body);
    for (const column of columns) {
      const values = R.methods.map((m) => m.table[column.key]).filter((v) => v !== null && !Number.isNaN(v));
      if (!values.length) continue;
      const best = column.higher_is_better ? Math.max(...values) : Math.min(...values);
      for (const td of body.querySelectorAll(`td[data-key="${column.key}"]`)) {
        if (td.dataset.value !== "" && Number(td.dataset.value) === best) td.classList.add("best");
      }
    }
    window.rdxSortable(table); // static/sort.js
    return table;
  }

  // ---------------------------------------------------------------- concepts
  function conceptCard(method, concept) {
    const card = el(
      "div",
      {
        class: "concept-card",
        "data-method": method.label,
        "data-side": concept.side,
        "data-index": concept.index,
        "data-size": concept.size,
        onclick: () => openConcept(method.label, concept.side, concept.index),
      },
      [
        concept.grid_file
          ? el("img", { class: "grid", src: concept.grid_file, loading: "lazy", alt: `concept ${concept.index}` })
          : el("div", { class: "muted small", text: "no grid figure" }),
        el("div", { class: "meta" }, [
          el("b", { text: `Concept ${concept.index}` }),
          ` · ${concept.size} images · BSR ${fmt(concept.bsr, 2)}`,
        ]),
        labelBar(concept.label_counts, concept.size),
        el("div", { class: "meta muted", text: compositionText(concept.label_counts, concept.size) }),
        significanceBadges(method, concept),
      ]
    );
    return card;
  }

  // the concept's difference test and stability (rdx.metrics.significance), when they were computed
  function significanceBadges(method, concept) {
    if (concept.q === null && concept.stability === null) return null;
    const badges = el("div", { class: "badges" });
    if (concept.q !== null) {
      const significant = concept.q < method.alpha;
      badges.appendChild(
        el("span", {
          class: "badge " + (significant ? "significant" : "not-significant"),
          title:
            `difference test: the grid's BSR against tight groups of ${sideName(concept.side)} ` +
            `(p ${fmt(concept.p, 4)}; q: Benjamini-Hochberg over the method's concepts). ` +
            "It asks whether the grid is more specific to this model than a typical tight group of it; " +
            "it does not tell a seed-level difference from a designed one (docs/significance.md).",
          text: `${significant ? "significant" : "not significant"} · q ${fmt(concept.q, 3)}`,
        })
      );
    }
    if (concept.stability !== null) {
      badges.appendChild(
        el("span", {
          class: "badge stability",
          title: "median best Jaccard overlap with the concepts refitted on subsamples",
          text: `stability ${fmt(concept.stability, 2)}`,
        })
      );
    }
    return badges;
  }

  function renderConcepts() {
    const root = $("#concepts");
    const method = methodByLabel(R.main);
    const sides = el("div", { class: "concept-sides" });
    for (const side of SIDES) {
      const concepts = method.concepts.filter((c) => c.side === side);
      const box = el("div", { class: "side", "data-side": side }, [
        el("h3", { text: `${sideName(side)} groups, ${sideName(OTHER[side])} separates` }),
        el("p", { class: "muted small", text: R.side_meaning[side] || "" }),
        el("div", { class: "concept-cards" }, concepts.map((c) => conceptCard(method, c))),
      ]);
      if (!concepts.length) box.appendChild(el("p", { class: "muted", text: "no concepts on this side" }));
      sides.appendChild(box);
    }
    root.appendChild(sides);
  }

  function conceptMembers(methodLabel, side, index) {
    const codes = state.points.members[`${methodLabel}/${side}`];
    const members = [];
    for (let i = 0; i < codes.length; i++) if (codes[i] === index) members.push(i);
    return members;
  }

  function openConcept(methodLabel, side, index) {
    const method = methodByLabel(methodLabel);
    const concept = method.concepts.find((c) => c.side === side && c.index === index);
    state.concept = { method: methodLabel, side: side, index: index, members: null, grid: concept.grid };
    state.page = 0;
    for (const card of document.querySelectorAll(".concept-card")) {
      const same = card.dataset.method === methodLabel && card.dataset.side === side && Number(card.dataset.index) === index;
      card.classList.toggle("open", same);
    }
    const view = $("#concept-view");
    view.hidden = false;
    $("#concept-title").textContent =
      `${methodLabel} · side ${side} · concept ${index}: ${concept.size} images that ${sideName(side)} groups` +
      (method.name.startsWith("rdx") ? ` and ${sideName(OTHER[side])} separates` : "");
    $("#concept-summary").replaceChildren(
      el("span", { text: `BSR ${fmt(concept.bsr, 3)} · score ${fmt(concept.score, 3)} · ` }),
      el("span", { text: compositionText(concept.label_counts, concept.size) }),
      labelBar(concept.label_counts, concept.size)
    );
    $("#neighbours").hidden = true;
    if (state.points) renderMembers();
    else $("#member-grid").replaceChildren(el("p", { class: "muted", text: "loading members…" }));
    view.scrollIntoView({ block: "start" });
  }

  function renderMembers() {
    const c = state.concept;
    if (!c) return;
    if (!c.members) {
      // grid images first (as in the figure), then the other members in index order
      const members = conceptMembers(c.method, c.side, c.index);
      const inGrid = new Set(c.grid);
      c.members = c.grid.filter((i) => members.includes(i)).concat(members.filter((i) => !inGrid.has(i)));
    }
    const pages = Math.max(1, Math.ceil(c.members.length / PAGE_SIZE));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const start = state.page * PAGE_SIZE;
    const shown = c.members.slice(start, start + PAGE_SIZE);
    const grid = $("#member-grid");
    grid.replaceChildren(
      ...shown.map((i) => {
        const cell = thumb(i, R.thumb_size);
        cell.addEventListener("click", () => openNeighbours(i));
        return cell;
      })
    );
    $("#member-page-info").textContent =
      `page ${state.page + 1} of ${pages} · images ${start + 1}–${start + shown.length} of ${c.members.length}`;
    $("#member-prev").disabled = state.page === 0;
    $("#member-next").disabled = state.page >= pages - 1;
  }

  // ---------------------------------------------------------------- neighbours
  function openNeighbours(image) {
    const P = state.points;
    const c = state.concept;
    const k = R.neighbours_k;
    const panel = $("#neighbours");
    panel.hidden = false;
    for (const cell of document.querySelectorAll("#member-grid .thumb")) {
      cell.classList.toggle("selected-image", Number(cell.dataset.image) === image);
    }
    const codes = c ? P.members[`${c.method}/${c.side}`] : null;
    const query = el("div", { class: "query", "data-image": image }, [
      thumb(image, 2 * R.thumb_size),
      el("div", {}, [
        el("div", { text: `image ${image} · label ${labelName(P.labels[image])}` }),
        el("div", {
          class: "muted small",
          text: c
            ? `Outlined: members of ${c.method} side ${c.side} concept ${c.index}. Red rank: a concept-mate ` +
              `near in this model but not among the ${k} nearest in the other.`
            : "",
        }),
      ]),
    ]);
    const columns = el("div", { class: "neighbour-cols" });
    for (const side of SIDES) {
      const table = P.neighbours[side];
      const col = el("div", { class: "nbr-col", "data-side": side }, [
        el("h3", { text: `Nearest in ${side}: ${sideName(side)}` }),
      ]);
      const list = el("div", { class: "member-grid" });
      for (let j = 0; j < k; j++) {
        const other = table.index[image * k + j];
        if (other < 0) continue;
        const rank = table.rank_in_other[image * k + j];
        const mate = codes !== null && codes[other] === c.index;
        const far = mate && side === c.side && rank > k;
        const cell = el(
          "div",
          {
            class: "thumb-cell" + (mate ? " mate" : "") + (far ? " far" : ""),
            "data-image": other,
            "data-rank": j + 1,
            "data-rank-other": rank,
          },
          [
            thumb(other, R.thumb_size),
            el("span", { class: "caption", text: `${labelName(P.labels[other])} · ${OTHER[side]}#${rank}` }),
          ]
        );
        cell.firstChild.addEventListener("click", () => openNeighbours(other));
        list.appendChild(cell);
      }
      col.appendChild(list);
      columns.appendChild(col);
    }
    panel.replaceChildren(
      el("h2", { text: "Neighbours in both models" }),
      el("p", {
        class: "muted small",
        text: `The ${k} nearest images in each model (Euclidean on the compared features); ` +
          `"B#812" is that image's rank among the neighbours in the other model.`,
      }),
      query,
      columns
    );
    panel.scrollIntoView({ block: "nearest" });
  }

  // ---------------------------------------------------------------- map
  const maps = {};
  function renderMapControls() {
    const embeddingSelect = $("#map-embedding");
    for (const name of R.maps) embeddingSelect.appendChild(el("option", { value: name, text: name.toUpperCase() }));
    embeddingSelect.value = state.map;
    embeddingSelect.addEventListener("change", () => {
      state.map = embeddingSelect.value;
      buildIndex();
      drawMaps();
    });
    const colourSelect = $("#map-colour");
    colourSelect.appendChild(el("option", { value: "label", text: "label" }));
    for (const method of R.methods) {
      for (const side of SIDES) {
        colourSelect.appendChild(
          el("option", { value: `${method.label}/${side}`, text: `concepts: ${method.label}, side ${side}` })
        );
      }
    }
    colourSelect.addEventListener("change", () => {
      state.colour = colourSelect.value;
      drawMaps();
      drawLegend();
    });
    $("#map-clear").addEventListener("click", () => setSelection(null));
    for (const side of SIDES) {
      const canvas = document.querySelector(`canvas.map-canvas[data-side="${side}"]`);
      maps[side] = { canvas: canvas, grid: null };
      attachMapEvents(side, canvas);
    }
    drawLegend();
  }

  function coordinates(side) {
    return state.points.embeddings[state.map][side];
  }

  // canvas pixel position of image i (CSS pixels, relative to the canvas)
  function project(side, i) {
    const canvas = maps[side].canvas;
    const size = canvas.clientWidth;
    const xy = coordinates(side);
    const [dx, dy] = centring(side);
    const pad = 10;
    return [pad + (xy[2 * i] + dx) * (size - 2 * pad), pad + (1 - xy[2 * i + 1] - dy) * (size - 2 * pad)];
  }
  // the map is scaled into the unit square keeping its aspect; centre the shorter axis
  const centrings = {};
  function centring(side) {
    const key = `${state.map}/${side}`;
    if (!centrings[key]) {
      const xy = coordinates(side);
      let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
      for (let i = 0; i < R.n; i++) {
        x0 = Math.min(x0, xy[2 * i]);
        x1 = Math.max(x1, xy[2 * i]);
        y0 = Math.min(y0, xy[2 * i + 1]);
        y1 = Math.max(y1, xy[2 * i + 1]);
      }
      centrings[key] = [(1 - (x1 - x0)) / 2 - x0, (1 - (y1 - y0)) / 2 - y0];
    }
    return centrings[key];
  }
  api.project = project; // (side, image) -> its point in CSS pixels from the canvas's top-left corner

  function buildIndex() {
    // a uniform bucket grid over the unit square for hover look-ups
    const B = 64;
    for (const side of SIDES) {
      const xy = coordinates(side);
      const buckets = new Map();
      for (let i = 0; i < R.n; i++) {
        const key = Math.min(B - 1, Math.floor(xy[2 * i] * B)) * B + Math.min(B - 1, Math.floor(xy[2 * i + 1] * B));
        if (!buckets.has(key)) buckets.set(key, []);
        buckets.get(key).push(i);
      }
      maps[side].grid = { B: B, buckets: buckets };
    }
  }

  function nearestPoint(side, x, y, radius) {
    const canvas = maps[side].canvas;
    const size = canvas.clientWidth;
    const pad = 10;
    const [dx, dy] = centring(side);
    const u = (x - pad) / (size - 2 * pad) - dx;
    const v = 1 - (y - pad) / (size - 2 * pad) - dy;
    const g = maps[side].grid;
    const reach = Math.ceil((radius / (size - 2 * pad)) * g.B) + 1;
    const bu = Math.floor(u * g.B);
    const bv = Math.floor(v * g.B);
    let best = -1;
    let bestDistance = radius * radius;
    for (let a = bu - reach; a <= bu + reach; a++) {
      for (let b = bv - reach; b <= bv + reach; b++) {
        if (a < 0 || b < 0 || a >= g.B || b >= g.B) continue;
        for (const i of g.buckets.get(a * g.B + b) || []) {
          const [px, py] = project(side, i);
          const d = (px - x) * (px - x) + (py - y) * (py - y);
          if (d <= bestDistance) {
            bestDistance = d;
            best = i;
          }
        }
      }
    }
    return best;
  }

  function pointColour(i) {
    if (state.colour === "label") return labelColour(state.points.labels[i]);
    const code = state.points.members[state.colour][i];
    return code > 0 ? conceptColour(code) : "#c9ced8";
  }

  function drawMaps() {
    if (!state.points) return;
    for (const side of SIDES) drawMap(side);
  }

  // Point size and opacity fall with N, so that dense regions show their mix of colours rather than a
  // solid blob: 2.6 px and 0.85 up to 2,000 images, then the area as 1 / N (down to a 1 px radius) and
  // the opacity as N^-1/4 (down to 0.35); at N = 20,000 a 1 px radius and 0.48.
  function pointStyle(n) {
    const density = Math.max(1, n / 2000);
    return { radius: Math.max(1, 2.6 / Math.sqrt(density)), alpha: Math.max(0.35, 0.85 / Math.pow(density, 0.25)) };
  }

  // The images in a fixed shuffled order (seeded, the same on every draw): drawn by index, the images
  // of the data set's last labels would cover all the others wherever the classes overlap.
  let shuffled = null;
  function drawingOrder() {
    if (!shuffled) {
      shuffled = Array.from({ length: R.n }, (_, i) => i);
      let seed = 12345;
      for (let i = R.n - 1; i > 0; i--) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        const j = seed % (i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
    }
    return shuffled;
  }

  function drawMap(side, brush) {
    const canvas = maps[side].canvas;
    const size = canvas.clientWidth;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(size * ratio);
    canvas.height = Math.round(size * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size, size);
    const { radius, alpha } = pointStyle(R.n);
    const selected = state.selection;
    const order = [];
    const inConcept = state.colour !== "label" ? state.points.members[state.colour] : null;
    for (const i of drawingOrder()) if (!(inConcept && inConcept[i] > 0)) order.push(i);
    if (inConcept) for (const i of drawingOrder()) if (inConcept[i] > 0) order.push(i);
    ctx.globalAlpha = selected ? 0.15 : alpha;
    for (const i of order) {
      if (selected && selected.has(i)) continue;
      const [x, y] = project(side, i);
      ctx.fillStyle = pointColour(i);
      ctx.fillRect(x - radius, y - radius, 2 * radius, 2 * radius);
    }
    if (selected) {
      ctx.globalAlpha = 1;
      for (const i of selected) {
        const [x, y] = project(side, i);
        ctx.fillStyle = pointColour(i);
        ctx.fillRect(x - radius - 0.5, y - radius - 0.5, 2 * radius + 1, 2 * radius + 1);
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 0.6;
        ctx.strokeRect(x - radius - 0.5, y - radius - 0.5, 2 * radius + 1, 2 * radius + 1);
      }
    }
    ctx.globalAlpha = 1;
    if (brush) {
      ctx.strokeStyle = "#2b5797";
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(brush[0], brush[1], brush[2] - brush[0], brush[3] - brush[1]);
      ctx.setLineDash([]);
    }
  }

  function drawLegend() {
    const legend = $("#map-legend");
    legend.replaceChildren();
    if (state.colour === "label") {
      for (const label of R.labels) {
        legend.appendChild(el("span", {}, [el("i", { style: `background:${labelColour(label)}` }), labelName(label)]));
      }
    } else {
      const [methodLabel, side] = state.colour.split("/");
      const method = methodByLabel(methodLabel);
      for (const c of method.concepts.filter((x) => x.side === side)) {
        legend.appendChild(el("span", {}, [el("i", { style: `background:${conceptColour(c.index)}` }), `concept ${c.index}`]));
      }
      legend.appendChild(el("span", {}, [el("i", { style: "background:#c9ced8" }), "in no concept"]));
    }
  }

  function setSelection(indices, source) {
    state.selection = indices && indices.length ? new Set(indices) : null;
    $("#map-selection-count").textContent = state.selection
      ? `${state.selection.size} images selected${source ? " in " + source : ""}, highlighted in both maps`
      : "drag a rectangle in either map to select images; they are highlighted in both";
    drawMaps();
  }
  api.select = setSelection;

  function attachMapEvents(side, canvas) {
    const tooltip = $("#map-tooltip");
    let drag = null;
    const local = (event) => {
      const rect = canvas.getBoundingClientRect();
      return [event.clientX - rect.left, event.clientY - rect.top];
    };
    canvas.addEventListener("mousemove", (event) => {
      if (!state.points) return;
      const [x, y] = local(event);
      if (drag) {
        drag.moved = drag.moved || Math.abs(x - drag.x) + Math.abs(y - drag.y) > 4;
        drawMap(side, [drag.x, drag.y, x, y]);
        return;
      }
      const i = nearestPoint(side, x, y, 8);
      if (i < 0) {
        tooltip.hidden = true;
        return;
      }
      const concept = state.colour !== "label" ? state.points.members[state.colour][i] : null;
      tooltip.replaceChildren(
        ...[
          thumb(i, 2 * R.thumb_size),
        el("div", { class: "tooltip-label", "data-image": i, text: `image ${i} · ${labelName(state.points.labels[i])}` }),
          concept !== null ? el("div", { class: "muted", text: concept > 0 ? `concept ${concept}` : "no concept" }) : null,
        ].filter((x) => x)
      );
      tooltip.hidden = false;
      tooltip.style.left = `${event.clientX + 14}px`;
      tooltip.style.top = `${event.clientY + 14}px`;
    });
    canvas.addEventListener("mouseleave", () => {
      tooltip.hidden = true;
    });
    canvas.addEventListener("mousedown", (event) => {
      const [x, y] = local(event);
      drag = { x: x, y: y, moved: false };
    });
    window.addEventListener("mouseup", (event) => {
      if (!drag) return;
      const [x, y] = local(event);
      const start = drag;
      drag = null;
      if (!start.moved) {
        const i = nearestPoint(side, x, y, 8);
        if (i >= 0) openNeighbours(i);
        drawMap(side);
        return;
      }
      const [x0, x1] = [Math.min(start.x, x), Math.max(start.x, x)];
      const [y0, y1] = [Math.min(start.y, y), Math.max(start.y, y)];
      const chosen = [];
      for (let i = 0; i < R.n; i++) {
        const [px, py] = project(side, i);
        if (px >= x0 && px <= x1 && py >= y0 && py <= y1) chosen.push(i);
      }
      setSelection(chosen, `model ${side}`);
    });
  }

  // ---------------------------------------------------------------- methods matrix
  function renderMatrix() {
    const table = el("table", { class: "data matrix", id: "methods-matrix" });
    table.appendChild(
      el("thead", {}, el("tr", {}, [
        el("th", { text: "method" }),
        el("th", { text: `side A: ${sideName("A")}` }),
        el("th", { text: `side B: ${sideName("B")}` }),
      ]))
    );
    const body = el("tbody");
    for (const method of R.methods) {
      const row = el("tr", { "data-method": method.label }, [
        el("td", {}, [el("b", { text: method.label }), el("div", { class: "muted small", text: `mBSR ${fmt(method.table.mbsr_silb)}` })]),
      ]);
      for (const side of SIDES) {
        const grids = el("div", { class: "grids" });
        for (const c of method.concepts.filter((x) => x.side === side)) {
          grids.appendChild(
            el("figure", { "data-side": side, "data-index": c.index, "data-bsr": c.bsr, onclick: () => openConcept(method.label, side, c.index) }, [
              c.grid_file ? el("img", { class: "grid", src: c.grid_file, loading: "lazy", alt: `${method.label} ${side}${c.index}` }) : null,
              el("figcaption", {
                text: `#${c.index} · n=${c.size} · BSR ${fmt(c.bsr, 2)}` + (c.q === null ? "" : ` · q ${fmt(c.q, 2)}`),
              }),
            ])
          );
        }
        row.appendChild(el("td", { class: `side-${side}` }, grids));
      }
      body.appendChild(row);
    }
    table.appendChild(body);
    $("#methods").appendChild(table);
  }

  // ---------------------------------------------------------------- agreement between methods
  // Per side a methods x methods table of the mean matched member Jaccard (Hungarian matching of their
  // concepts), then the concepts that at least two methods find; a concept opens on click.
  function agreementValue(side, first, second) {
    if (first === second) return 1;
    const pair = R.agreement.pairs[side].find(
      (p) => (p.first === first && p.second === second) || (p.first === second && p.second === first)
    );
    return pair ? pair.mean_jaccard : null;
  }

  function renderAgreement() {
    const root = $("#agreement");
    if (!R.agreement) {
      root.hidden = true;
      return;
    }
    const methods = R.agreement.methods;
    for (const side of SIDES) {
      root.appendChild(el("h3", { text: `Side ${side}: what ${sideName(side)} groups together that ${sideName(OTHER[side])} separates` }));
      const table = el("table", { class: "data agreement", id: `agreement-${side}` });
      table.appendChild(el("thead", {}, el("tr", {}, [el("th", { text: "" }), ...methods.map((m) => el("th", { text: m }))])));
      const body = el("tbody");
      for (const first of methods) {
        const row = el("tr", { "data-method": first }, [el("th", { text: first })]);
        for (const second of methods) {
          const value = agreementValue(side, first, second);
          const shade = value === null ? null : `background: rgba(27, 158, 119, ${(0.6 * value).toFixed(2)})`;
          row.appendChild(el("td", { "data-method": second, "data-value": value, style: shade, text: first === second ? "·" : fmt(value, 2) }));
        }
        body.appendChild(row);
      }
      table.appendChild(body);
      root.appendChild(table);
      const shared = R.agreement.shared[side] || [];
      const list = el("ul", { class: "shared", id: `shared-${side}` });
      for (const c of shared) {
        const partners = c.found_by.map((f) => `${f.method} #${f.index} (${fmt(f.jaccard, 2)})`).join(", ");
        list.appendChild(
          el("li", { "data-method": c.method, "data-index": c.index }, [
            el("a", { href: "#concept-view", onclick: () => openConcept(c.method, side, c.index), text: `${c.method} #${c.index}` }),
            ` — also found by ${partners}`,
          ])
        );
      }
      root.appendChild(
        shared.length
          ? el("div", {}, [el("p", { class: "small", text: `Concepts at least two methods find (matched Jaccard ≥ ${R.agreement.threshold}):` }), list])
          : el("p", { class: "muted small", text: `No concept on side ${side} is found by two methods (matched Jaccard ≥ ${R.agreement.threshold}).` })
      );
    }
  }

  // ---------------------------------------------------------------- start
  function onPoints() {
    state.points = window.RDX_POINTS;
    buildIndex();
    drawMaps();
    if (state.concept) renderMembers();
    $("#points-status").textContent = "";
    api.ready = true;
    performance.mark("rdx-ready"); // scripts/bench_report.py reads when the page became usable
  }

  function loadPoints() {
    if (window.RDX_POINTS) return onPoints(); // inline (the single-file variant logged to W&B)
    const script = document.createElement("script");
    script.src = R.points_file;
    script.onload = onPoints;
    script.onerror = () => {
      $("#points-status").textContent = `could not load ${R.points_file}: members, neighbours and maps are unavailable`;
    };
    document.body.appendChild(script);
  }

  function start() {
    document.title = R.title;
    renderOverview();
    renderConcepts();
    renderMatrix();
    renderAgreement();
    renderMapControls();
    $("#member-prev").addEventListener("click", () => {
      state.page -= 1;
      renderMembers();
    });
    $("#member-next").addEventListener("click", () => {
      state.page += 1;
      renderMembers();
    });
    $("#concept-on-map").addEventListener("click", () => {
      if (!state.concept || !state.points) return;
      const c = state.concept;
      $("#map-colour").value = `${c.method}/${c.side}`;
      state.colour = `${c.method}/${c.side}`;
      drawLegend();
      setSelection(c.members, `${c.method} ${c.side}${c.index}`);
      $("#map").scrollIntoView({ block: "start" });
    });
    window.addEventListener("resize", drawMaps);
    requestAnimationFrame(() => setTimeout(loadPoints, 0));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
