// BranchTree front end: the daemon's tree document drawn as a top-down SVG
// tree. Sandboxes are rounded boxes, snapshots are pills; status is told by
// strokes and dashes (colours from the theme, see widgets.css). Click
// selects (the Python side sees `selected`); double click on a running
// sandbox asks the kernel to make it the notebook's current one.
//
// Large trees: siblings wrap into rows of WRAP, a subtree collapses from
// its node's toggle, and "Fit" scales the whole drawing to the output's
// width. By default only the live lineage is drawn (see `visibleIds`).

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 150;
const NODE_H = 38;
const GAP_X = 18;
const GAP_Y = 34;
const PAD = 10;
const WRAP = 6; // siblings per row before wrapping
const LABEL_CHARS = 22;

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function htmlEl(tag, attrs, parent, text) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  if (parent) parent.appendChild(el);
  return el;
}

function fmtMs(v) {
  if (v === null || v === undefined) return "-";
  return v < 100 ? v.toFixed(2) : v.toFixed(0);
}

function clip(text) {
  return text.length > LABEL_CHARS
    ? text.slice(0, LABEL_CHARS - 1) + "…"
    : text;
}

// Nesting: sandbox -> its snapshots (branch edges), snapshot -> its children
// (spawn edges). Diff layering is not nesting (shown in the label).
function nesting(tree, keep) {
  const nodes = new Map(
    (tree.nodes || []).filter((n) => keep(n.id)).map((n) => [n.id, n]),
  );
  const below = new Map();
  const parentOf = new Map();
  for (const e of tree.edges || []) {
    if (e.kind !== "branch" && e.kind !== "spawn") continue;
    if (!nodes.has(e.source) || !nodes.has(e.target)) continue;
    if (!below.has(e.source)) below.set(e.source, []);
    below.get(e.source).push(e.target);
    parentOf.set(e.target, e.source);
  }
  return { nodes, below, parentOf };
}

// The live lineage: running sandboxes, every ancestor of one, snapshots
// still being written, and the current sandbox (even dead: it is shown
// dead, with a way on). With showDead, everything.
export function visibleIds(tree, current, showDead) {
  const all = nesting(tree, () => true);
  if (showDead) return new Set(all.nodes.keys());
  const keep = new Set();
  const climb = (id) => {
    while (id !== undefined && !keep.has(id)) {
      keep.add(id);
      id = all.parentOf.get(id);
    }
  };
  for (const [id, n] of all.nodes) {
    const live =
      (n.kind === "sandbox" && n.status === "running") ||
      (n.kind === "snapshot" && n.status === "writing") ||
      id === current;
    if (live) climb(id);
  }
  return keep;
}

// Positions in grid units: x a column, depth a row. Children of a node sit
// below it in rows of at most WRAP subtrees; the node sits above the middle
// of its first row; separate trees wrap the same way. Collapsed nodes keep
// their children out of the layout.
export function layout(tree, keep = () => true, collapsed = new Set()) {
  const { nodes, below, parentOf } = nesting(tree, keep);
  const order = (ids) =>
    [...ids].sort(
      (a, b) => (nodes.get(a).created_at || 0) - (nodes.get(b).created_at || 0),
    );
  const placed = new Map();
  const seen = new Set();
  let depthMax = 0;
  const place = (id, depth, col0) => {
    seen.add(id);
    depthMax = Math.max(depthMax, depth);
    const kids = collapsed.has(id)
      ? []
      : order(below.get(id) || []).filter((k) => !seen.has(k));
    if (kids.length === 0) {
      placed.set(id, { x: col0, depth });
      return { w: 1, h: 1 };
    }
    let row = depth + 1;
    let width = 0;
    let firstRow = null;
    for (let i = 0; i < kids.length; i += WRAP) {
      let col = col0;
      let height = 0;
      const chunk = kids.slice(i, i + WRAP);
      for (const kid of chunk) {
        const size = place(kid, row, col);
        col += size.w;
        height = Math.max(height, size.h);
      }
      if (firstRow === null) firstRow = chunk;
      width = Math.max(width, col - col0);
      row += height;
    }
    const xs = firstRow.map((k) => placed.get(k).x);
    placed.set(id, { x: (Math.min(...xs) + Math.max(...xs)) / 2, depth });
    return { w: width, h: row - depth };
  };
  // Trees side by side wrap too: rows of at most WRAP roots, each row
  // below the tallest tree of the row before.
  const roots = order([...nodes.keys()].filter((i) => !parentOf.has(i)));
  let columns = 0;
  let top = 0;
  for (let i = 0; i < roots.length; i += WRAP) {
    let col = 0;
    let height = 0;
    for (const id of roots.slice(i, i + WRAP)) {
      const size = place(id, top, col);
      col += size.w;
      height = Math.max(height, size.h);
    }
    columns = Math.max(columns, col);
    top += height;
  }
  return { nodes, below, placed, columns, depth: depthMax + 1 };
}

// Wrapped children hang from a bus: a trunk down from the parent (it runs
// in the gap between the middle columns, where no node sits), one
// horizontal line above each row, a short drop to each child.
function drawBus(svg, parent, kids) {
  const trunkX = parent.x + NODE_W / 2;
  const rows = new Map();
  for (const k of kids) {
    if (!rows.has(k.y)) rows.set(k.y, []);
    rows.get(k.y).push(k.x + NODE_W / 2);
  }
  const lastBus = Math.max(...rows.keys()) - GAP_Y / 2;
  const d = [`M${trunkX},${parent.y + NODE_H} V${lastBus}`];
  for (const [y, xs] of rows) {
    const busY = y - GAP_Y / 2;
    d.push(`M${Math.min(trunkX, ...xs)},${busY} H${Math.max(trunkX, ...xs)}`);
    for (const x of xs) d.push(`M${x},${busY} V${y}`);
  }
  svgEl("path", { d: d.join(" "), class: "forkd-edge" }, svg);
}

function label(node) {
  if (node.kind === "sandbox") {
    const name = node.name && node.name !== node.id ? ` ${node.name}` : "";
    const state =
      node.status === "running" ? (node.busy ? "busy" : "idle") : "dead";
    const where = node.node ? ` @ ${node.node}` : "";
    return [`${node.id}${name}`, `${state}${where}`];
  }
  const tag = node.tag ? ` ${node.tag}` : "";
  const on = node.parent ? `, on ${node.parent}` : "";
  return [`${node.id}${tag}`, `${node.mode} ${fmtMs(node.pause_ms)} ms${on}`];
}

function tooltip(node) {
  if (node.kind === "sandbox") {
    const why = node.exit_reason ? `: ${node.exit_reason}` : "";
    const state =
      node.status === "running" ? (node.busy ? "busy" : "idle") : "dead";
    const where = node.node ? ` on node ${node.node}` : "";
    return `${node.id} ${node.name || ""} (${state}${why})${where}`;
  }
  return `${node.id} ${node.mode} (${node.status}): pause ${fmtMs(node.pause_ms)} ms, round trip ${fmtMs(node.round_trip_ms)} ms, copy ${fmtMs(node.copy_ms)} ms`;
}

function send(model, content) {
  model.send(content);
}

// Above the drawing: the connection, a dead current sandbox and its way on,
// and the view's controls.
function drawBar(model, root, view, hiddenDead) {
  const tree = model.get("tree") || {};
  const connection = model.get("connection");
  if (connection) {
    const banner = htmlEl(
      "div",
      { class: "forkd-banner forkd-banner-error forkd-disconnected" },
      root,
      connection,
    );
    const retry = htmlEl(
      "button",
      { class: "forkd-reconnect", title: "Try to reach the daemon now" },
      banner,
      "Reconnect",
    );
    retry.addEventListener("click", () => send(model, { type: "reconnect" }));
  }
  const current = model.get("current");
  const node = (tree.nodes || []).find((n) => n.id === current);
  if (node && node.kind === "sandbox" && node.status !== "running") {
    const why = node.exit_reason ? ` (${node.exit_reason})` : "";
    const banner = htmlEl(
      "div",
      { class: "forkd-banner forkd-dead-current" },
      root,
      `The current sandbox ${current} is dead${why}.`,
    );
    const spawn = htmlEl(
      "button",
      {
        class: "forkd-spawn-current",
        title: "Spawn a fresh sandbox and make it this notebook's current one",
      },
      banner,
      "Spawn a fresh one",
    );
    spawn.addEventListener("click", () => {
      spawn.disabled = true;
      spawn.textContent = "Spawning…";
      send(model, { type: "spawn_current" });
    });
  }
  const bar = htmlEl("div", { class: "forkd-bar" }, root);
  const fit = htmlEl(
    "button",
    {
      class: "forkd-fit",
      title: view.fit ? "Draw at actual size" : "Scale the tree to fit",
    },
    bar,
    view.fit ? "Actual size" : "Fit",
  );
  fit.addEventListener("click", () => {
    view.fit = !view.fit;
    view.redraw();
  });
  const showDead = model.get("show_dead");
  const toggle = htmlEl("label", { title: "Draw dead sandboxes too" }, bar);
  const box = htmlEl(
    "input",
    { type: "checkbox", class: "forkd-show-dead" },
    toggle,
  );
  box.checked = showDead;
  toggle.append(showDead ? "dead shown" : `dead hidden (${hiddenDead})`);
  box.addEventListener("change", () => {
    model.set("show_dead", box.checked);
    model.save_changes();
  });
  const dead = (tree.nodes || []).filter(
    (n) => n.kind === "sandbox" && n.status === "dead",
  ).length;
  const clear = htmlEl(
    "button",
    {
      class: "forkd-clear-dead",
      title: "Remove the records of every dead sandbox",
    },
    bar,
    `Clear dead (${dead})`,
  );
  clear.disabled = dead === 0;
  clear.addEventListener("click", () => {
    clear.disabled = true;
    clear.textContent = "Clearing…";
    send(model, { type: "clear_dead" });
  });
}

function draw(model, root, view) {
  const tree = model.get("tree") || {};
  const current = model.get("current");
  const selected = model.get("selected");
  root.replaceChildren();
  const keepIds = visibleIds(tree, current, model.get("show_dead"));
  const hiddenDead = (tree.nodes || []).filter(
    (n) => n.kind === "sandbox" && n.status === "dead" && !keepIds.has(n.id),
  ).length;
  drawBar(model, root, view, hiddenDead);
  drawTimeline(model, root, view);
  const { nodes, below, placed, columns, depth } = layout(
    tree,
    (id) => keepIds.has(id),
    view.collapsed,
  );
  if (nodes.size === 0) {
    htmlEl(
      "div",
      { class: "forkd-empty" },
      root,
      hiddenDead
        ? "no live sandboxes: %forkd spawn"
        : "no sandboxes yet: %forkd spawn",
    );
    return;
  }
  const width = PAD * 2 + columns * (NODE_W + GAP_X);
  const height = PAD * 2 + depth * (NODE_H + GAP_Y);
  const scroll = htmlEl("div", { class: "forkd-scroll" }, root);
  const svg = svgEl(
    "svg",
    {
      class: "forkd-tree",
      viewBox: `0 0 ${width} ${height}`,
      width: view.fit ? "100%" : width,
      height: view.fit ? "auto" : height,
    },
    scroll,
  );
  if (view.fit) svg.style.maxWidth = `${width}px`;
  const pos = (id) => {
    const p = placed.get(id);
    return {
      x: PAD + p.x * (NODE_W + GAP_X),
      y: PAD + p.depth * (NODE_H + GAP_Y),
    };
  };
  for (const [src, all] of below) {
    if (!placed.has(src)) continue;
    const kids = all.filter((k) => placed.has(k));
    if (kids.length > WRAP) {
      drawBus(svg, pos(src), kids.map(pos));
      continue;
    }
    const a = pos(src);
    for (const kid of kids) {
      const b = pos(kid);
      const midY = b.y - GAP_Y / 2;
      svgEl(
        "path",
        {
          d: `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${midY} ${b.x + NODE_W / 2},${midY} ${b.x + NODE_W / 2},${b.y}`,
          class: "forkd-edge",
        },
        svg,
      );
    }
  }
  for (const [id, node] of nodes) {
    if (!placed.has(id)) continue;
    const { x, y } = pos(id);
    const classes = [
      "forkd-node",
      `forkd-${node.kind}`,
      `forkd-status-${node.status}`,
    ];
    if (id === current) classes.push("forkd-current");
    if (id === selected) classes.push("forkd-selected");
    const g = svgEl(
      "g",
      {
        class: classes.join(" "),
        "data-id": id,
        "data-kind": node.kind,
        transform: `translate(${x},${y})`,
      },
      svg,
    );
    svgEl(
      "rect",
      {
        width: NODE_W,
        height: NODE_H,
        rx: node.kind === "snapshot" ? NODE_H / 2 : 6,
      },
      g,
    );
    const [line1, line2] = label(node);
    const mark = id === current ? "★ " : "";
    svgEl(
      "text",
      { x: NODE_W / 2, y: 15, class: "forkd-label" },
      g,
    ).textContent = mark + clip(line1);
    svgEl("text", { x: NODE_W / 2, y: 30, class: "forkd-sub" }, g).textContent =
      clip(line2);
    svgEl("title", {}, g).textContent = tooltip(node);
    const kids = below.get(id) || [];
    if (kids.length) {
      const folded = view.collapsed.has(id);
      const toggle = svgEl(
        "text",
        {
          x: NODE_W - 5,
          y: NODE_H - 3,
          class: "forkd-toggle",
          "data-toggle": id,
        },
        g,
      );
      toggle.textContent = folded ? `+${kids.length}` : "−";
      svgEl("title", {}, toggle).textContent = folded
        ? "Show this subtree"
        : "Collapse this subtree";
      toggle.addEventListener("click", (event) => {
        event.stopPropagation();
        if (folded) view.collapsed.delete(id);
        else view.collapsed.add(id);
        view.redraw();
      });
    }
    g.addEventListener("click", () => {
      model.set("selected", id);
      model.save_changes();
    });
    g.addEventListener("dblclick", () =>
      send(model, { type: "make_current", id }),
    );
  }
}

export default {
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "forkd-widget forkd-branch-tree";
    el.appendChild(root);
    const view = {
      fit: false,
      collapsed: new Set(),
      redraw: null,
      asking: null,
    };
    view.redraw = () => draw(model, root, view);
    const traits = [
      "tree",
      "current",
      "selected",
      "connection",
      "show_dead",
      "timeline",
    ];
    for (const t of traits) model.on(`change:${t}`, view.redraw);
    view.redraw();
    return () => {
      for (const t of traits) model.off(`change:${t}`, view.redraw);
    };
  },
};
