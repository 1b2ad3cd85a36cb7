// BranchTree front end: the daemon's tree document drawn as a top-down SVG
// tree. Sandboxes are rounded boxes, snapshots are pills; colours follow
// status. Click selects (the Python side sees `selected`); double click on a
// running sandbox asks the kernel to make it the current one.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 150;
const NODE_H = 38;
const GAP_X = 18;
const GAP_Y = 34;
const PAD = 10;

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

// Nesting: sandbox -> its snapshots (branch edges), snapshot -> its children
// (spawn edges). Diff layering is not nesting (shown in the label).
export function layout(tree) {
  const nodes = new Map((tree.nodes || []).map((n) => [n.id, n]));
  const below = new Map();
  const hasParent = new Set();
  for (const e of tree.edges || []) {
    if (e.kind !== "branch" && e.kind !== "spawn") continue;
    if (!nodes.has(e.source) || !nodes.has(e.target)) continue;
    if (!below.has(e.source)) below.set(e.source, []);
    below.get(e.source).push(e.target);
    hasParent.add(e.target);
  }
  const order = (ids) =>
    [...ids].sort(
      (a, b) => (nodes.get(a).created_at || 0) - (nodes.get(b).created_at || 0),
    );
  const placed = new Map();
  let nextColumn = 0;
  let depthMax = 0;
  // Leaves take the next column; a parent sits above the middle of its children.
  const place = (id, depth, seen) => {
    if (seen.has(id)) return placed.get(id)?.x ?? 0;
    seen.add(id);
    depthMax = Math.max(depthMax, depth);
    const kids = order(below.get(id) || []);
    let x;
    if (kids.length === 0) {
      x = nextColumn++;
    } else {
      const xs = kids.map((k) => place(k, depth + 1, seen));
      x = (Math.min(...xs) + Math.max(...xs)) / 2;
    }
    placed.set(id, { x, depth });
    return x;
  };
  const seen = new Set();
  for (const id of order([...nodes.keys()].filter((i) => !hasParent.has(i)))) {
    place(id, 0, seen);
  }
  return { nodes, below, placed, columns: nextColumn, depth: depthMax + 1 };
}

function label(node) {
  if (node.kind === "sandbox") {
    const name = node.name && node.name !== node.id ? ` ${node.name}` : "";
    return [`${node.id}${name}`, node.status + (node.busy ? ", busy" : "")];
  }
  const tag = node.tag ? ` ${node.tag}` : "";
  const on = node.parent ? `, on ${node.parent}` : "";
  return [`${node.id}${tag}`, `${node.mode} ${fmtMs(node.pause_ms)} ms${on}`];
}

function draw(model, root) {
  const tree = model.get("tree") || {};
  const current = model.get("current");
  const selected = model.get("selected");
  root.replaceChildren();
  const { nodes, below, placed, columns, depth } = layout(tree);
  if (nodes.size === 0) {
    const empty = document.createElement("div");
    empty.className = "forkd-empty";
    empty.textContent = "no sandboxes yet: %forkd spawn";
    root.appendChild(empty);
    return;
  }
  const width = PAD * 2 + columns * (NODE_W + GAP_X);
  const height = PAD * 2 + depth * (NODE_H + GAP_Y);
  const svg = svgEl("svg", { width, height, class: "forkd-tree" }, root);
  const pos = (id) => {
    const p = placed.get(id);
    return {
      x: PAD + p.x * (NODE_W + GAP_X),
      y: PAD + p.depth * (NODE_H + GAP_Y),
    };
  };
  for (const [src, kids] of below) {
    if (!placed.has(src)) continue;
    const a = pos(src);
    for (const kid of kids) {
      if (!placed.has(kid)) continue;
      const b = pos(kid);
      const midY = (a.y + NODE_H + b.y) / 2;
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
    svgEl(
      "text",
      { x: NODE_W / 2, y: 15, class: "forkd-label" },
      g,
    ).textContent = line1;
    svgEl("text", { x: NODE_W / 2, y: 30, class: "forkd-sub" }, g).textContent =
      line2;
    svgEl("title", {}, g).textContent =
      node.kind === "sandbox"
        ? `${node.id} (${node.status})${node.exit_reason ? ": " + node.exit_reason : ""}`
        : `${node.id} ${node.mode}: pause ${fmtMs(node.pause_ms)} ms, round trip ${fmtMs(node.round_trip_ms)} ms, copy ${fmtMs(node.copy_ms)} ms`;
    g.addEventListener("click", () => {
      model.set("selected", id);
      model.save_changes();
    });
    g.addEventListener("dblclick", () =>
      model.send({ type: "make_current", id }),
    );
  }
}

export default {
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "forkd-widget forkd-branch-tree";
    el.appendChild(root);
    const redraw = () => draw(model, root);
    model.on("change:tree", redraw);
    model.on("change:current", redraw);
    model.on("change:selected", redraw);
    redraw();
    return () => {
      model.off("change:tree", redraw);
      model.off("change:current", redraw);
      model.off("change:selected", redraw);
    };
  },
};
