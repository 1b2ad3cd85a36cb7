/**
 * The timeline of the active notebook's sandbox: its checkpoints as a row
 * of cells (execution count, first line). A click asks first, then checks
 * the sandbox out there (in the notebook's kernel, so its attach mode
 * follows) or branches a new sandbox from there.
 */
import React from 'react';

import { ForkdActions } from './actions';
import { ForkdModel } from './model';
import { history, sittingAt, stateOf } from './timeline';

export function Timeline(props: {
  model: ForkdModel;
  actions: ForkdActions;
}): JSX.Element | null {
  const { model, actions } = props;
  const sandboxId = model.currentSandbox;
  const sandbox = sandboxId ? model.sandboxes.get(sandboxId) : undefined;
  if (!sandboxId || !sandbox || sandbox.status !== 'running') {
    return null;
  }
  const past = history(model, sandboxId);
  if (past.length === 0) {
    return null;
  }
  const at = sittingAt(model, sandboxId, past);
  return (
    <div className="jp-forkd-timeline">
      <div className="jp-forkd-timeline-title">
        Cells of {sandbox.name}: click to go back
      </div>
      <ol className="jp-forkd-timeline-cells">
        {past.map(mark => (
          <li key={mark.id}>
            <button
              className={
                'jp-forkd-checkpoint' + (mark.id === at ? ' jp-forkd-here' : '')
              }
              data-snapshot={mark.id}
              data-cell={mark.checkpoint.cell ?? ''}
              title={`The state ${stateOf(mark.checkpoint)} (${mark.id})`}
              onClick={() => void actions.checkoutAsked(mark)}
            >
              <span className="jp-forkd-checkpoint-count">
                {mark.checkpoint.cell === null
                  ? 'kept:'
                  : `[${mark.checkpoint.cell}]`}
              </span>{' '}
              {mark.checkpoint.cell === null
                ? stateOf(mark.checkpoint)
                : mark.checkpoint.line}
            </button>
          </li>
        ))}
      </ol>
    </div>
  );
}
