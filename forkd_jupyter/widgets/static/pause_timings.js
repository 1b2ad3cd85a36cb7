// PauseTimings front end: one row per branch mode, a dot per branch at its
// pause_ms on a log scale, p50 and p90 marks, tooltips with the round trip
// and copy time; a title, a legend and the axis's unit. Dots are drawn
// after (over) the marks, which take no pointer events, so every dot's
// tooltip stays reachable. Branches whose snapshot was deleted stay, faded.

const SVG = "http://www.w3.org/2000/svg";
const MODES = ["live", "diff", "full"];
const ROW_H = 46;
const LEFT = 60;
const RIGHT = 170;
const WIDTH = 680;
const TOP = 30;
const AXIS_H = 44;

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function fmtMs(v) {
  if (v === null || v === undefined) return "-";
  return v < 100 ? v.toFixed(2) : v.toFixed(0);
}

// The same rule as PauseTimings.summary on the Python side.
export function percentile(sorted, p) {
  const k = (sorted.length - 1) * p;
  const lo = Math.floor(k);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

function drawLegend(svg, y) {
  const g = svgEl("g", { class: "forkd-legend" }, svg);
  let x = LEFT;
  for (const mode of MODES) {
    svgEl(
      "circle",
      { cx: x + 5, cy: y, r: 5, class: `forkd-dot forkd-dot-${mode}` },
      g,
    );
    svgEl("text", { x: x + 14, y: y + 4 }, g).textContent = mode;
    x += 60;
  }
  for (const [name, text] of [
    ["p50", "p50 (median)"],
    ["p90", "p90"],
  ]) {
    svgEl(
      "line",
      { x1: x, x2: x + 16, y1: y, y2: y, class: `forkd-${name}` },
      g,
    );
    svgEl("text", { x: x + 20, y: y + 4 }, g).textContent = text;
    x += name === "p50" ? 110 : 60;
  }
  svgEl(
    "circle",
    { cx: x + 5, cy: y, r: 5, class: "forkd-dot forkd-dot-deleted" },
    g,
  );
  svgEl("text", { x: x + 14, y: y + 4 }, g).textContent = "snapshot deleted";
}

function draw(model, root) {
  const rows = (model.get("timings") || []).filter((t) => t.pause_ms > 0);
  root.replaceChildren();
  const connection = model.get("connection");
  if (connection) {
    const banner = document.createElement("div");
    banner.className = "forkd-banner forkd-banner-error forkd-disconnected";
    banner.textContent = connection;
    root.appendChild(banner);
  }
  if (rows.length === 0) {
    const empty = document.createElement("div");
    empty.className = "forkd-empty";
    empty.textContent = "no branches yet: %forkd branch";
    root.appendChild(empty);
    return;
  }
  const values = rows.map((t) => t.pause_ms);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values) * 1.0001)));
  const x = (v) =>
    LEFT +
    ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) *
      (WIDTH - LEFT - RIGHT);
  const height = TOP + MODES.length * ROW_H + AXIS_H;
  const svg = svgEl(
    "svg",
    { width: WIDTH, height, class: "forkd-timings" },
    root,
  );
  svgEl("text", { x: 8, y: 18, class: "forkd-title" }, svg).textContent =
    "How long each branch paused its source (ms, log scale)";
  const plotBottom = TOP + MODES.length * ROW_H;
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    svgEl(
      "line",
      { x1: x(d), x2: x(d), y1: TOP, y2: plotBottom, class: "forkd-grid" },
      svg,
    );
    svgEl(
      "text",
      { x: x(d), y: plotBottom + 14, class: "forkd-axis" },
      svg,
    ).textContent = `${fmtMs(d)} ms`;
  }
  drawLegend(svg, height - 10);
  MODES.forEach((mode, i) => {
    const y = TOP + i * ROW_H + ROW_H / 2;
    const mine = rows.filter((t) => t.mode === mode);
    const g = svgEl(
      "g",
      {
        class: `forkd-mode forkd-mode-${mode}`,
        "data-mode": mode,
        "data-count": mine.length,
      },
      svg,
    );
    svgEl(
      "text",
      { x: 8, y: y + 4, class: "forkd-mode-label" },
      g,
    ).textContent = mode;
    svgEl(
      "line",
      { x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y, class: "forkd-row" },
      g,
    );
    if (mine.length) {
      const sorted = mine.map((t) => t.pause_ms).sort((a, b) => a - b);
      for (const [name, p] of [
        ["p50", 0.5],
        ["p90", 0.9],
      ]) {
        const v = percentile(sorted, p);
        svgEl(
          "line",
          {
            x1: x(v),
            x2: x(v),
            y1: y - 12,
            y2: y + 12,
            class: `forkd-${name}`,
          },
          g,
        );
      }
      svgEl(
        "text",
        { x: WIDTH - RIGHT + 8, y: y + 4, class: "forkd-stats" },
        g,
      ).textContent =
        `p50 ${fmtMs(percentile(sorted, 0.5))} ms / p90 ${fmtMs(percentile(sorted, 0.9))} ms`;
    }
    for (const t of mine) {
      const classes = t.deleted ? "forkd-dot forkd-dot-deleted" : "forkd-dot";
      const dot = svgEl(
        "circle",
        {
          cx: x(t.pause_ms),
          cy: y,
          r: 5,
          class: classes,
          "data-snapshot": t.snapshot_id,
        },
        g,
      );
      const gone = t.deleted ? " (snapshot deleted)" : "";
      svgEl("title", {}, dot).textContent =
        `${t.snapshot_id} (${mode})${gone}: pause ${fmtMs(t.pause_ms)} ms, round trip ${fmtMs(t.round_trip_ms)} ms, copy ${fmtMs(t.copy_ms)} ms`;
    }
  });
}

export default {
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "forkd-widget forkd-pause-timings";
    el.appendChild(root);
    const redraw = () => draw(model, root);
    model.on("change:timings", redraw);
    model.on("change:connection", redraw);
    redraw();
    return () => {
      model.off("change:timings", redraw);
      model.off("change:connection", redraw);
    };
  },
};
