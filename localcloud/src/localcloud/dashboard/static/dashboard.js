// Renders a CloudWatch dashboard body: metric widgets as SVG line charts (timeSeries), numbers
// (singleValue, gauge, bar, pie), text widgets as light markdown. Data comes from the server's
// /api/widget endpoint (GetMetricData); every metric widget is refreshed every few seconds.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const SVG = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const state = { body: null, name: null, widgets: [], texts: [], defaults: {}, busy: false, rendered: 0 };

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const trim = (text) => (text.includes(".") ? text.replace(/\.?0+$/, "") : text);
  for (const [size, suffix] of units) {
    if (abs >= size) return trim((value / size).toFixed(abs >= size * 100 ? 0 : abs >= size * 10 ? 1 : 2)) + suffix;
  }
  if (abs === 0) return "0";
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 1) return trim(value.toFixed(abs >= 10 ? 1 : 2));
  return value.toPrecision(2);
}

// Axis ticks at 1, 2 or 5 times a power of ten.
function niceTicks(min, max, count) {
  if (max <= min) max = min + 1;
  const raw = (max - min) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = Math.floor(min / step) * step; v <= top + step / 1e6; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
function timeTicks(start, end, count) {
  const span = (end - start) / 1000;
  const step = (TIME_STEPS.find((s) => span / s <= count) || 86400) * 1000;
  const ticks = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
  return { ticks, withSeconds: step < 60000 };
}

function clock(ms, withSeconds) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (withSeconds ? ":" + pad(d.getSeconds()) : "");
}

function seriesColor(series, index) {
  return series.color || PALETTE[index % PALETTE.length];
}

function drawTimeSeries(box, props, data) {
  box.replaceChildren();
  const annotations = ((props.annotations || {}).horizontal || []).filter((a) => a.visible !== false);
  // The legend goes in first so the chart takes exactly the height left over.
  const legend = el("div", { class: "legend" });
  data.series.forEach((s, index) => {
    const last = s.values.length ? formatNumber(s.values[s.values.length - 1]) : "no data";
    legend.append(el("span", { class: "legend-item" },
      el("span", { class: "swatch", style: `background:${seriesColor(s, index)}` }), `${s.label} (${last})`));
  });
  for (const note of annotations) {
    legend.append(el("span", { class: "legend-item" },
      el("span", { class: "swatch", style: `background:${note.color || "#d62728"}` }), note.label || "annotation"));
  }
  box.append(legend);
  const width = Math.max(200, box.clientWidth);
  const height = Math.max(80, box.clientHeight - legend.offsetHeight - 2);
  const axes = props.yAxis || {};
  const hasRight = data.series.some((s) => s.yAxis === "right");
  const margin = { left: 52, right: hasRight ? 48 : 14, top: 8, bottom: 20 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, height, role: "img",
    "aria-label": props.title || "chart" });
  const x = (t) => margin.left + ((t - data.start) / Math.max(1, data.end - data.start)) * plotW;
  const scales = {};
  for (const side of ["left", "right"]) {
    const members = data.series.filter((s) => (s.yAxis || "left") === side);
    if (side === "right" && !members.length) continue;
    const values = members.flatMap((s) => s.values);
    if (side === "left") values.push(...annotations.filter((a) => (a.yAxis || "left") === "left").map((a) => a.value));
    const conf = axes[side] || {};
    let lo = conf.min !== undefined ? conf.min : Math.min(0, ...values);
    let hi = conf.max !== undefined ? conf.max : Math.max(...values, lo + 1) * 1.08;
    const ticks = niceTicks(lo, hi, Math.max(2, Math.floor(plotH / 32)));
    if (conf.max === undefined) hi = ticks[ticks.length - 1];
    if (conf.min === undefined) lo = ticks[0];
    scales[side] = { lo, hi, ticks: ticks.filter((t) => t >= lo && t <= hi), conf,
      y: (v) => margin.top + plotH - ((v - lo) / Math.max(1e-12, hi - lo)) * plotH };
  }
  const axis = el("svg:g", { class: "axis" });
  for (const [side, scale] of Object.entries(scales)) {
    const xPos = side === "left" ? margin.left : margin.left + plotW;
    for (const tick of scale.ticks) {
      const y = scale.y(tick);
      if (side === "left") axis.append(el("svg:line", { class: "grid", x1: margin.left, x2: margin.left + plotW, y1: y, y2: y }));
      axis.append(el("svg:text", { x: side === "left" ? xPos - 6 : xPos + 6, y: y + 3,
        "text-anchor": side === "left" ? "end" : "start" }, formatNumber(tick)));
    }
    if (scale.conf.label) {
      const cx = side === "left" ? 11 : width - 4;
      const cy = margin.top + plotH / 2;
      axis.append(el("svg:text", { class: "axis-label", x: cx, y: cy, "text-anchor": "middle",
        transform: `rotate(-90 ${cx} ${cy})` }, scale.conf.label));
    }
  }
  const { ticks, withSeconds } = timeTicks(data.start, data.end, Math.max(3, Math.floor(plotW / 64)));
  for (const t of ticks) {
    axis.append(el("svg:line", { class: "tick", x1: x(t), x2: x(t), y1: margin.top + plotH, y2: margin.top + plotH + 4 }));
    axis.append(el("svg:text", { x: x(t), y: height - 4, "text-anchor": "middle" }, clock(t, withSeconds)));
  }
  axis.append(el("svg:path", { d: `M${margin.left},${margin.top}V${margin.top + plotH}H${margin.left + plotW}`, fill: "none" }));
  svg.append(axis);

  let drawn = 0;
  const gap = Math.max(1, data.period) * 1000 * 1.5;
  data.series.forEach((s, index) => {
    const scale = scales[s.yAxis === "right" ? "right" : "left"];
    if (!s.values.length) return;
    const color = seriesColor(s, index);
    let d = "";
    s.timestamps.forEach((t, i) => {
      const breaks = i === 0 || t - s.timestamps[i - 1] > gap;
      d += (breaks ? "M" : "L") + x(t).toFixed(1) + "," + scale.y(s.values[i]).toFixed(1);
    });
    const group = el("svg:g", { class: "series-group", "data-label": s.label });
    group.append(el("svg:path", { class: "series", d, stroke: color, "data-points": s.values.length }));
    if (s.values.length <= 90) {
      s.timestamps.forEach((t, i) => {
        const dot = el("svg:circle", { class: "point", cx: x(t).toFixed(1), cy: scale.y(s.values[i]).toFixed(1), r: 2.2, fill: color });
        dot.append(el("svg:title", {}, `${s.label}: ${formatNumber(s.values[i])} at ${clock(t, true)}`));
        group.append(dot);
      });
    }
    svg.append(group);
    drawn += 1;
  });
  for (const note of annotations) {
    const scale = scales[note.yAxis === "right" ? "right" : "left"];
    if (!scale || note.value < scale.lo || note.value > scale.hi) continue;
    const y = scale.y(note.value);
    const color = note.color || "#d62728";
    const g = el("svg:g", { class: "annotation", "data-value": note.value });
    g.append(el("svg:line", { x1: margin.left, x2: margin.left + plotW, y1: y, y2: y, stroke: color }));
    g.append(el("svg:text", { x: margin.left + plotW - 4, y: y - 4, "text-anchor": "end", style: `fill:${color}` },
      `${note.label || ""} ${formatNumber(note.value)}`.trim()));
    svg.append(g);
  }
  if (!drawn) {
    svg.append(el("svg:text", { class: "empty", x: margin.left + plotW / 2, y: margin.top + plotH / 2,
      "text-anchor": "middle" }, "No data for this time range"));
  }
  box.insertBefore(svg, legend);
}

function drawNumbers(box, props, data) {
  box.replaceChildren();
  const row = el("div", { class: "numbers" });
  const gauge = props.view === "gauge" ? (props.yAxis || {}).left || {} : null;
  data.series.forEach((s, index) => {
    const value = s.values.length ? s.values[s.values.length - 1] : null;
    const cell = el("div", { class: "number", style: `border-left-color:${seriesColor(s, index)}`, "data-label": s.label },
      el("div", { class: "value" }, formatNumber(value)), el("div", { class: "label" }, s.label));
    if (gauge && value !== null) {
      const lo = gauge.min || 0;
      const hi = gauge.max || Math.max(value, 1);
      const share = Math.max(0, Math.min(1, (value - lo) / Math.max(1e-12, hi - lo)));
      cell.append(el("div", { class: "gauge" }, el("div", { style: `width:${(share * 100).toFixed(1)}%;background:${seriesColor(s, index)}` })));
    }
    row.append(cell);
  });
  box.append(row);
}

function inline(text) {
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return escaped
    .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
    .replace(/\*(.+?)\*/g, "<em>$1</em>")
    .replace(/`(.+?)`/g, "<code>$1</code>")
    .replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2">$1</a>');
}

// A text widget's "per period (60 s)" describes the widgets' own period: when the page overrides
// it, say the period the charts actually use.
function withChosenPeriod(markdown) {
  const chosen = document.getElementById("period").value;
  if (!chosen) return String(markdown || "");
  return String(markdown || "").replace(/(per period\**\s*)\(\d+ ?s\)/gi, `$1(${chosen} s)`);
}

function drawMarkdown(box, markdown) {
  const html = [];
  for (const block of withChosenPeriod(markdown).split(/\n{2,}/)) {
    for (const line of block.split("\n")) {
      const heading = line.match(/^(#{1,3})\s+(.*)$/);
      if (heading) html.push(`<h${heading[1].length + 1}>${inline(heading[2])}</h${heading[1].length + 1}>`);
      else if (line.trim()) html.push(`<p>${inline(line)}</p>`);
    }
  }
  box.innerHTML = html.join("");
}

async function fetchJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function timeRange() {
  return document.getElementById("range").value;
}

async function refreshWidget(widget) {
  const props = widget.spec.properties || {};
  try {
    const data = await fetchJson("/api/widget", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ properties: props, start: timeRange(), period: document.getElementById("period").value || null }),
    });
    const view = props.view || "timeSeries";
    if (view === "timeSeries") drawTimeSeries(widget.box, props, data);
    else drawNumbers(widget.box, props, data);
    if (data.errors && data.errors.length) widget.box.append(el("div", { class: "error" }, data.errors.join("; ")));
    widget.node.dataset.state = "ok";
  } catch (error) {
    widget.box.replaceChildren(el("div", { class: "error" }, String(error.message || error)));
    widget.node.dataset.state = "error";
  }
}

function layout(body) {
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  state.widgets = [];
  state.texts = [];
  const widgets = (body.widgets || []).slice().sort((a, b) => (a.y || 0) - (b.y || 0) || (a.x || 0) - (b.x || 0));
  for (const spec of widgets) {
    const props = spec.properties || {};
    const type = spec.type || "metric";
    const node = el("section", { class: `widget ${type}`, "data-type": type, "data-view": props.view || "timeSeries",
      style: `grid-column:${(spec.x || 0) + 1} / span ${spec.width || 6};grid-row:${(spec.y || 0) + 1} / span ${spec.height || 6}` });
    const box = el("div", { class: type === "metric" ? "body chart" : "body" });
    if (type !== "text") node.append(el("h2", { title: props.title || "" }, props.title || ""));
    node.append(box);
    grid.append(node);
    if (type === "text") {
      drawMarkdown(box, props.markdown);
      state.texts.push({ box, markdown: props.markdown });
    }
    else if (type === "metric") state.widgets.push({ spec, node, box });
    else box.append(el("p", { class: "muted" }, `${type} widgets are not shown on this page`));
  }
}

// A few requests at a time: each is a GetMetricData call, and a local CloudWatch shares the
// machine with the stack it watches.
async function inBatches(items, size, work) {
  const queue = items.slice();
  const workers = Array.from({ length: Math.min(size, queue.length) }, async () => {
    while (queue.length) await work(queue.shift());
  });
  await Promise.all(workers);
}

async function refreshAll() {
  if (state.busy || !state.body) return;
  state.busy = true;
  try {
    await inBatches(state.widgets, 3, refreshWidget);
    state.rendered += 1;
    document.body.dataset.rendered = String(state.rendered);
    document.getElementById("updated").textContent = "updated " + clock(Date.now(), true);
  } finally {
    state.busy = false;
  }
}

async function openDashboard(name) {
  const { body } = await fetchJson("/api/dashboards/" + encodeURIComponent(name));
  state.body = body;
  state.name = name;
  document.title = name;
  const range = document.getElementById("range");
  const wanted = params.get("start") || state.defaults.start || body.start || "-PT1H";
  if (![...range.options].some((o) => o.value === wanted)) range.append(el("option", { value: wanted }, wanted));
  range.value = wanted;
  layout(body);
  await refreshAll();
}

async function main() {
  const message = document.getElementById("message");
  const period = document.getElementById("period");
  try {
    const { dashboards, defaults } = await fetchJson("/api/dashboards");
    state.defaults = defaults || {};
    const wantedPeriod = params.get("period") || (state.defaults.period ? String(state.defaults.period) : "");
    if (wantedPeriod) {
      if (![...period.options].some((o) => o.value === wantedPeriod)) period.append(el("option", { value: wantedPeriod }, wantedPeriod + " s"));
      period.value = wantedPeriod;
    }
    const select = document.getElementById("dashboard");
    for (const name of dashboards) select.append(el("option", { value: name }, name));
    if (!dashboards.length) {
      message.textContent = "No dashboards yet: deploy a template with an AWS::CloudWatch::Dashboard.";
      return;
    }
    const chosen = dashboards.includes(params.get("dashboard")) ? params.get("dashboard") : dashboards[0];
    select.value = chosen;
    select.addEventListener("change", () => openDashboard(select.value));
    document.getElementById("range").addEventListener("change", refreshAll);
    period.addEventListener("change", () => {
      for (const text of state.texts) drawMarkdown(text.box, text.markdown);
      refreshAll();
    });
    await openDashboard(chosen);
    const every = Math.max(1, Number(params.get("refresh") || 10));
    setInterval(refreshAll, every * 1000);
    let resize = null;
    window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(refreshAll, 200); });
  } catch (error) {
    message.textContent = "Cannot load dashboards: " + (error.message || error);
    message.classList.add("error");
  }
}

main();
