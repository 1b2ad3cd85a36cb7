// The attached sandbox's checkpoints as a row of cells (BranchTree's
// `timeline` trait; prepended to branch_tree.js, whose helpers it shares).
// A click on a checkpoint asks first: check out there (the present is kept
// as a snapshot), branch a new sandbox from there, or cancel.

// "before [N]" for a checkpoint taken before cell N; a state a checkout
// left behind (cell null) is "after [K]".
function stateOf(mark) {
  return mark.cell === null || mark.cell === undefined
    ? `after [${mark.after}]`
    : `before [${mark.cell}]`;
}

function drawTimeline(model, root, view) {
  const line = model.get("timeline") || {};
  const marks = line.checkpoints || [];
  if (!line.sandbox) return;
  const box = htmlEl("div", { class: "forkd-timeline" }, root);
  htmlEl("span", { class: "forkd-timeline-title" }, box, `${line.name}:`);
  const row = htmlEl("div", { class: "forkd-timeline-row" }, box);
  if (marks.length === 0) {
    htmlEl("span", { class: "forkd-empty" }, row, "no checkpoints yet");
  }
  for (const mark of marks) {
    const here = mark.snapshot === line.at;
    const chip = htmlEl(
      "button",
      {
        class: "forkd-checkpoint" + (here ? " forkd-here" : ""),
        "data-snapshot": mark.snapshot,
        "data-cell": mark.cell ?? "",
        title: `the state ${stateOf(mark)} ${mark.line}`,
      },
      row,
      mark.cell === null || mark.cell === undefined
        ? `kept: ${stateOf(mark)}`
        : `[${mark.cell}] ${clip(mark.line || "")}`,
    );
    chip.addEventListener("click", () => {
      view.asking = view.asking === mark.snapshot ? null : mark.snapshot;
      view.redraw();
    });
  }
  if (!line.at && line.last_cell !== null && line.last_cell !== undefined) {
    htmlEl(
      "span",
      { class: "forkd-checkpoint forkd-here forkd-now" },
      row,
      `now: after [${line.last_cell}]`,
    );
  }
  const mark = marks.find((m) => m.snapshot === view.asking);
  if (!mark) return;
  const ask = htmlEl("div", { class: "forkd-banner forkd-confirm" }, box);
  htmlEl(
    "span",
    {},
    ask,
    `Go back to the state ${stateOf(mark)}? The present is kept as a snapshot.`,
  );
  const choices = [
    [
      "forkd-do-checkout",
      "Check out",
      { type: "checkout", snapshot: mark.snapshot },
    ],
    [
      "forkd-do-branch",
      "Branch from here",
      { type: "branch_from", snapshot: mark.snapshot },
    ],
    ["forkd-do-cancel", "Cancel", null],
  ];
  for (const [cls, text, message] of choices) {
    const button = htmlEl("button", { class: cls }, ask, text);
    button.addEventListener("click", () => {
      view.asking = null;
      if (message) send(model, message);
      view.redraw();
    });
  }
}
