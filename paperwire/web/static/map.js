/* The topic map (templates/map.html): a 2-D canvas of every paper, from /api/v1/map/points.
   Points are written straight into an ImageData buffer (no per-point canvas call), so 100k+
   stay smooth; labels and highlights are drawn on top. Mouse: drag to pan, wheel to zoom,
   hover for the title, click to open. Touch: one finger pans, two pinch. No dependencies. */
(function () {
  "use strict";
  var canvas = document.getElementById("map-canvas");
  if (!canvas) return;
  var ctx = canvas.getContext("2d");
  var frame = document.getElementById("map-frame");
  var tip = document.getElementById("map-tip");
  var note = document.getElementById("map-note");
  var loading = document.getElementById("map-loading");

  var ids = [], xs = null, ys = null, cs = null, n = 0;
  var coarse = [], fine = [];
  var highlight = {search: null, today: null, library: null};
  var view = {s: 1, tx: 0, ty: 0};
  var W = 0, H = 0, dpr = 1, base = 1;
  var grid = null, G = 128;
  var titles = {};
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");

  // 24 hues, spaced by the golden angle so neighbouring cluster ids differ.
  function colour(i, light) {
    var h = (i * 137.508) % 360;
    return hsl(h, 0.62, light);
  }
  function hsl(h, s, l) {
    var c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs((h / 60) % 2 - 1)), m = l - c / 2, r, g, b;
    if (h < 60) { r = c; g = x; b = 0; } else if (h < 120) { r = x; g = c; b = 0; } else if (h < 180) { r = 0; g = c; b = x; }
    else if (h < 240) { r = 0; g = x; b = c; } else if (h < 300) { r = x; g = 0; b = c; } else { r = c; g = 0; b = x; }
    return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
  }
  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }
  function parseColour(s) {
    var m = /^#([0-9a-f]{6})$/i.exec(s);
    if (m) { var v = parseInt(m[1], 16); return [v >> 16, (v >> 8) & 255, v & 255]; }
    return [255, 255, 255];
  }
  var palette = [];
  function setPalette() {
    var isDark = dark && dark.matches;
    palette = [];
    for (var i = 0; i < 64; i++) palette.push(colour(i, isDark ? 0.62 : 0.45));
  }

  function resize() {
    var r = frame.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    W = Math.max(1, Math.round(r.width)); H = Math.max(1, Math.round(r.height));
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    base = Math.min(W, H) * 0.94;
    draw();
  }
  function reset() {
    view.s = 1; view.tx = (W - base) / 2; view.ty = (H - base) / 2; draw();
  }
  function sx(x) { return x * base * view.s + view.tx; }
  function sy(y) { return y * base * view.s + view.ty; }
  function wx(px) { return (px - view.tx) / (base * view.s); }
  function wy(py) { return (py - view.ty) / (base * view.s); }

  function buildGrid() {
    grid = new Array(G * G);
    for (var i = 0; i < n; i++) {
      var gx = Math.min(G - 1, (xs[i] * G) | 0), gy = Math.min(G - 1, (ys[i] * G) | 0), k = gy * G + gx;
      (grid[k] || (grid[k] = [])).push(i);
    }
  }
  function nearest(px, py, radius) {
    if (!grid) return -1;
    var x = wx(px), y = wy(py), r = radius / (base * view.s), best = -1, bestD = r * r;
    var x0 = Math.max(0, ((x - r) * G) | 0), x1 = Math.min(G - 1, ((x + r) * G) | 0);
    var y0 = Math.max(0, ((y - r) * G) | 0), y1 = Math.min(G - 1, ((y + r) * G) | 0);
    for (var gy = y0; gy <= y1; gy++) for (var gx = x0; gx <= x1; gx++) {
      var cell = grid[gy * G + gx]; if (!cell) continue;
      for (var j = 0; j < cell.length; j++) {
        var i = cell[j], dx = xs[i] - x, dy = ys[i] - y, d = dx * dx + dy * dy;
        if (d < bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  var frameImg = null, frame32 = null;
  var littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  // Colour ``c`` blended at alpha ``a`` over ``bg``, opaque, as one 32-bit RGBA pixel.
  function pack(c, bg, a) {
    var r = Math.round(bg[0] + (c[0] - bg[0]) * a), g = Math.round(bg[1] + (c[1] - bg[1]) * a),
        b = Math.round(bg[2] + (c[2] - bg[2]) * a);
    return (littleEndian ? ((255 << 24) | (b << 16) | (g << 8) | r) : ((r << 24) | (g << 16) | (b << 8) | 255)) >>> 0;
  }
  var pending = false;
  function draw() { if (!pending) { pending = true; requestAnimationFrame(paint); } }
  function paint() {
    pending = false;
    if (!W) return;
    var bg = parseColour(cssVar("--panel", "#ffffff"));
    var cw = canvas.width, ch = canvas.height;
    // One ImageData per canvas size, written as 32-bit pixels: the background is one fill()
    // and a dot's pixel one store, so a frame of 100k dots costs a few ms (bench/map_frames.py).
    if (!frameImg || frameImg.width !== cw || frameImg.height !== ch) {
      frameImg = ctx.createImageData(cw, ch); frame32 = new Uint32Array(frameImg.data.buffer);
    }
    var img = frameImg, px32 = frame32;
    px32.fill(pack(bg, bg, 1));
    var size = Math.max(1, Math.round(dpr * Math.min(4, 1.2 + view.s * 0.5)));
    var anyHi = highlight.search || highlight.today || highlight.library;
    var a = anyHi ? 0.35 : 0.85;  // fade the rest while something is highlighted
    var colours = new Uint32Array(palette.length);  // each cluster's colour over the background
    for (var k = 0; k < palette.length; k++) colours[k] = pack(palette[k], bg, a);
    var scale = base * view.s * dpr, ox = view.tx * dpr, oy = view.ty * dpr, maxX = cw - size, maxY = ch - size;
    for (var i = 0; i < n; i++) {
      var X = Math.round(xs[i] * scale + ox), Y = Math.round(ys[i] * scale + oy);
      if (X < 0 || Y < 0 || X >= maxX || Y >= maxY) continue;
      var col = colours[cs[i] % colours.length];
      for (var yy = 0, row = Y * cw + X; yy < size; yy++, row += cw) {
        for (var xx = 0; xx < size; xx++) px32[row + xx] = col;
      }
    }
    ctx.putImageData(img, 0, 0);
    ctx.save();
    ctx.scale(dpr, dpr);
    drawHighlights();
    drawLabels();
    ctx.restore();
    canvas.dataset.scale = view.s.toFixed(3);
    canvas.dataset.view = view.tx.toFixed(1) + "," + view.ty.toFixed(1);  // the pan, for tests and debugging
    clearTimeout(probeTimer);
    probeTimer = setTimeout(findProbe, 120);
  }
  // A dot near the middle with no other dot within 20 px, named in data-probe-* once the view
  // settles: what the browser tests click, and a stable "paper in the middle" for scripts.
  var probeTimer = null;
  function findProbe() {
    // Grows a window about the middle (40 px, doubled until a dot qualifies or the window
    // covers the screen), read from the grid: a settled view never scans a million dots.
    if (!grid || !n) return;
    var cx = W / 2, cy = H / 2, checked = 0, pick = -1, first = -1, seen = {};
    for (var half = 40; ; half *= 2) {
      var whole = half >= Math.max(W, H), r = half / (base * view.s), vis = [];
      var gx0 = Math.max(0, (wx(cx) - r) * G | 0), gx1 = Math.min(G - 1, (wx(cx) + r) * G | 0);
      var gy0 = Math.max(0, (wy(cy) - r) * G | 0), gy1 = Math.min(G - 1, (wy(cy) + r) * G | 0);
      for (var gy = gy0; gy <= gy1; gy++) for (var gx = gx0; gx <= gx1; gx++) {
        var cell = grid[gy * G + gx]; if (!cell) continue;
        for (var c = 0; c < cell.length; c++) {
          var i = cell[c], X = sx(xs[i]), Y = sy(ys[i]), d = Math.abs(X - cx) + Math.abs(Y - cy);
          // Within `half` (Manhattan) every dot is in the window, so their order is exact.
          if (X > 20 && Y > 20 && X < W - 60 && Y < H - 20 && (whole || d <= half) && !seen[i]) vis.push([d, i]);
        }
      }
      vis.sort(function (a, b) { return a[0] - b[0]; });
      for (var k = 0; k < vis.length && checked < 400 && pick < 0; k++, checked++) {
        var j = vis[k][1];
        seen[j] = true;
        if (first < 0) first = j;
        if (nearestOther(j, 20) < 0) pick = j;
      }
      if (pick >= 0 || whole || checked >= 400) break;
    }
    if (pick < 0) pick = first;
    if (pick < 0) { delete canvas.dataset.probeId; canvas.dataset.probeScale = ""; return; }
    canvas.dataset.probeId = ids[pick];
    canvas.dataset.probeX = sx(xs[pick]).toFixed(1);
    canvas.dataset.probeY = sy(ys[pick]).toFixed(1);
    canvas.dataset.probeScale = view.s.toFixed(3);
  }
  function nearestOther(i, radius) {
    var r = radius / (base * view.s), x = xs[i], y = ys[i];
    var x0 = Math.max(0, ((x - r) * G) | 0), x1 = Math.min(G - 1, ((x + r) * G) | 0);
    var y0 = Math.max(0, ((y - r) * G) | 0), y1 = Math.min(G - 1, ((y + r) * G) | 0);
    for (var gy = y0; gy <= y1; gy++) for (var gx = x0; gx <= x1; gx++) {
      var cell = grid && grid[gy * G + gx]; if (!cell) continue;
      for (var c = 0; c < cell.length; c++) {
        var o = cell[c]; if (o === i) continue;
        var dx = xs[o] - x, dy = ys[o] - y;
        if (dx * dx + dy * dy < r * r) return o;
      }
    }
    return -1;
  }
  function drawHighlights() {
    var sets = [["library", "#2a9d63"], ["today", "#e0692b"], ["search", "#d62f6f"]];
    for (var k = 0; k < sets.length; k++) {
      var set = highlight[sets[k][0]]; if (!set) continue;
      ctx.fillStyle = sets[k][1]; ctx.strokeStyle = cssVar("--panel", "#fff"); ctx.lineWidth = 1;
      set.forEach(function (i) {
        var X = sx(xs[i]), Y = sy(ys[i]);
        if (X < -5 || Y < -5 || X > W + 5 || Y > H + 5) return;
        ctx.beginPath(); ctx.arc(X, Y, 4.5, 0, 6.2832); ctx.fill(); ctx.stroke();
      });
    }
  }
  function drawLabels() {
    var list = view.s < 2.5 ? coarse : fine;
    var text = cssVar("--text", "#111"), halo = cssVar("--panel", "#fff");
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.font = (view.s < 2.5 ? "600 13px " : "12px ") + "system-ui, sans-serif";
    ctx.lineJoin = "round"; ctx.lineWidth = 3.5;
    var placed = [], shown = [];
    for (var i = 0; i < list.length; i++) {
      var c = list[i], X = sx(c.x), Y = sy(c.y);
      if (X < 0 || Y < 0 || X > W || Y > H) continue;
      var label = c.terms && c.terms.length ? c.terms.slice(0, 2).join(" · ") : c.label;
      var w = ctx.measureText(label).width, clash = false;
      X = Math.min(Math.max(X, w / 2 + 4), W - w / 2 - 4);  // keep labels near the edge readable
      var box = [X - w / 2, Y - 9, X + w / 2, Y + 9];
      for (var j = 0; j < placed.length; j++) {  // bigger clusters come first and win the space
        var b = placed[j];
        if (box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1]) { clash = true; break; }
      }
      if (clash) continue;
      placed.push(box); shown.push(label);
      ctx.strokeStyle = halo; ctx.strokeText(label, X, Y);
      ctx.fillStyle = text; ctx.fillText(label, X, Y);
    }
    // Which zoom level's labels are drawn, and which of them found room (tests, debugging).
    canvas.dataset.labelLevel = view.s < 2.5 ? "coarse" : "fine";
    canvas.dataset.labels = shown.join(" | ");
  }

  // ---------------------------------------------------------------- interaction
  function zoomAt(px, py, factor) {
    var s = Math.min(400, Math.max(0.5, view.s * factor)); factor = s / view.s;
    view.tx = px - (px - view.tx) * factor; view.ty = py - (py - view.ty) * factor; view.s = s; draw();
  }
  function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = local(e); zoomAt(p[0], p[1], Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0018)));
  }, {passive: false});
  var pointers = {}, drag = null, moved = 0, pinch = null;
  canvas.addEventListener("pointerdown", function (e) {
    canvas.setPointerCapture(e.pointerId);
    pointers[e.pointerId] = local(e);
    var keys = Object.keys(pointers);
    if (keys.length === 1) { drag = local(e); moved = 0; canvas.classList.add("dragging"); }
    if (keys.length === 2) {
      var a = pointers[keys[0]], b = pointers[keys[1]];
      pinch = {d: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1}; drag = null; moved = 99;
    }
  });
  canvas.addEventListener("pointermove", function (e) {
    var p = local(e);
    if (pointers[e.pointerId]) pointers[e.pointerId] = p;
    var keys = Object.keys(pointers);
    if (pinch && keys.length === 2) {
      var a = pointers[keys[0]], b = pointers[keys[1]], dd = Math.hypot(a[0] - b[0], a[1] - b[1]) || 1;
      zoomAt((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, dd / pinch.d); pinch.d = dd; return;
    }
    if (drag) {
      var dx = p[0] - drag[0], dy = p[1] - drag[1]; moved += Math.abs(dx) + Math.abs(dy);
      view.tx += dx; view.ty += dy; drag = p; draw(); hideTip(); return;
    }
    hover(p);
  });
  function up(e) {
    var p = local(e);
    delete pointers[e.pointerId];
    if (Object.keys(pointers).length < 2) pinch = null;
    if (drag && moved < 6) open(p, e.pointerType === "touch" ? 16 : 8);
    drag = null; canvas.classList.remove("dragging");
  }
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", function (e) { delete pointers[e.pointerId]; drag = null; pinch = null; });
  canvas.addEventListener("pointerleave", function (e) { if (e.pointerType === "mouse") hideTip(); });
  function open(p, radius) {
    var i = nearest(p[0], p[1], radius);
    if (i >= 0) window.location.href = "/papers/" + encodeURI(ids[i]);
  }
  var hoverTimer = null, hovered = -1;
  function hover(p) {
    var i = nearest(p[0], p[1], 8);
    canvas.classList.toggle("over-point", i >= 0);
    if (i < 0) { hideTip(); return; }
    hovered = i; showTip(i, p);
  }
  function showTip(i, p) {
    var id = ids[i];
    tip.hidden = false;
    tip.style.left = Math.min(W - 200, p[0] + 12) + "px"; tip.style.top = Math.max(4, p[1] - 10) + "px";
    if (titles[id] !== undefined) { setTip(id); return; }
    tip.textContent = id;
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(function () {
      fetch("/api/papers/" + encodeURI(id), {headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) { titles[id] = j && j.title ? j.title : ""; if (ids[hovered] === id) setTip(id); })
        .catch(function () { titles[id] = ""; });
    }, 60);
  }
  function setTip(id) {
    tip.textContent = "";  // text nodes only: titles are data, never markup
    var t = document.createElement("strong"); t.textContent = titles[id] || id; tip.appendChild(t);
    var m = document.createElement("span"); m.className = "muted"; m.textContent = id + " · click to open"; tip.appendChild(m);
  }
  function hideTip() { tip.hidden = true; hovered = -1; }
  document.getElementById("map-in").addEventListener("click", function () { zoomAt(W / 2, H / 2, 1.6); });
  document.getElementById("map-out").addEventListener("click", function () { zoomAt(W / 2, H / 2, 1 / 1.6); });
  document.getElementById("map-reset").addEventListener("click", reset);

  // ---------------------------------------------------------------- highlights
  var index = null;
  function indexOf(list) {
    if (!index) { index = new Map(); for (var i = 0; i < n; i++) index.set(ids[i], i); }
    var out = [];
    list.forEach(function (id) { var i = index.get(id); if (i !== undefined) out.push(i); });
    return out;
  }
  function fetchSet(name, query) {
    var url = "/api/v1/map/highlight?set=" + name + (query ? "&q=" + encodeURIComponent(query) : "");
    return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (j) { note.textContent = j.note || j.error || ""; return j.ids ? indexOf(j.ids) : []; });
  }
  document.getElementById("map-search").addEventListener("submit", function (e) {
    e.preventDefault();
    var q = document.getElementById("map-q").value.trim();
    if (!q) { highlight.search = null; note.textContent = ""; draw(); return; }
    history.replaceState(null, "", "/map?q=" + encodeURIComponent(q));
    fetchSet("search", q).then(function (set) { highlight.search = set; canvas.dataset.hits = set.length; fitTo(set); draw(); });
  });
  function toggle(boxId, name) {
    var box = document.getElementById(boxId); if (!box) return;
    box.addEventListener("change", function () {
      if (!box.checked) { highlight[name] = null; draw(); return; }
      fetchSet(name).then(function (set) { highlight[name] = set; canvas.dataset[name + "Hits"] = set.length; draw(); });
    });
  }
  toggle("map-today", "today"); toggle("map-library", "library");
  function fitTo(set) {  // zoom to the highlighted papers' bounding box (kept within sane zoom)
    if (!set || !set.length) return;
    var x0 = 1, x1 = 0, y0 = 1, y1 = 0;
    set.forEach(function (i) { x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]); y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]); });
    var span = Math.max(x1 - x0, y1 - y0, 0.08) * 1.3;
    view.s = Math.min(20, Math.max(1, 1 / span));
    view.tx = W / 2 - ((x0 + x1) / 2) * base * view.s; view.ty = H / 2 - ((y0 + y1) / 2) * base * view.s;
  }

  // ---------------------------------------------------------------- loading
  function getJSON(url) {
    return fetch(url, {headers: {Accept: "application/json"}}).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status); return r.json();
    });
  }
  function loadPoints(cursor, acc) {
    return getJSON("/api/v1/map/points" + (cursor ? "?cursor=" + encodeURIComponent(cursor) : "")).then(function (j) {
      acc.push(j);
      loading.textContent = "Loading… " + acc.reduce(function (s, p) { return s + p.ids.length; }, 0).toLocaleString() + " papers";
      return j.next_cursor ? loadPoints(j.next_cursor, acc) : acc;
    });
  }
  Promise.all([getJSON("/api/v1/map?limit=1"), loadPoints(null, [])]).then(function (res) {
    coarse = res[0].clusters || []; fine = res[0].fine_clusters || [];
    var pages = res[1];
    n = pages.reduce(function (s, p) { return s + p.ids.length; }, 0);
    xs = new Float32Array(n); ys = new Float32Array(n); cs = new Uint16Array(n);
    var k = 0;
    pages.forEach(function (p) {
      for (var i = 0; i < p.ids.length; i++, k++) {
        ids.push(p.ids[i]); xs[k] = p.xy[2 * i] / 65535; ys[k] = p.xy[2 * i + 1] / 65535; cs[k] = p.c[i];
      }
    });
    buildGrid();
    document.querySelectorAll(".swatch[data-cluster]").forEach(function (el) {
      var c = palette[(+el.dataset.cluster) % palette.length];
      el.style.background = "rgb(" + c.join(",") + ")";
    });
    loading.hidden = true;
    canvas.dataset.points = n;
    reset();
    canvas.dataset.ready = "1";
    var q = document.getElementById("map-q").value.trim();
    if (q) document.getElementById("map-search").requestSubmit();
  }).catch(function (err) {
    loading.textContent = "The map could not be loaded (" + err.message + "). Reload to try again.";
  });

  setPalette();
  if (dark && dark.addEventListener) dark.addEventListener("change", function () { setPalette(); draw(); });
  window.addEventListener("resize", resize);
  resize();
})();
