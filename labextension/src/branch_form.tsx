import React, { useState } from 'react';

import { ForkdActions } from './actions';
import { FormButtons, useSubmit } from './form_parts';
import { BranchMode, ISandbox } from './types';

const MODES: BranchMode[] = ['live', 'diff', 'full'];
const MAX_CHILDREN = 16;

/** Branch a sandbox: mode, number of children to spawn, optional tag. */
export function BranchForm(props: {
  sandbox: ISandbox;
  actions: ForkdActions;
  onDone: () => void;
}): JSX.Element {
  const { sandbox, actions, onDone } = props;
  const [mode, setMode] = useState<BranchMode>(
    sandbox.live_fork ? 'live' : 'full'
  );
  const [count, setCount] = useState(1);
  const [tag, setTag] = useState('');
  const { pending, submit } = useSubmit(
    () => actions.branch(sandbox.id, { mode, count, tag: tag.trim() }),
    onDone
  );

  return (
    <form className="jp-forkd-branch-form" onSubmit={submit}>
      <label>
        mode
        <select
          className="jp-forkd-branch-mode"
          value={mode}
          onChange={e => setMode(e.target.value as BranchMode)}
        >
          {MODES.map(m => (
            <option
              key={m}
              value={m}
              disabled={m === 'live' && !sandbox.live_fork}
            >
              {m}
            </option>
          ))}
        </select>
      </label>
      <label>
        children
        <input
          className="jp-forkd-branch-count"
          type="number"
          min={0}
          max={MAX_CHILDREN}
          value={count}
          onChange={e =>
            setCount(
              Math.max(0, Math.min(MAX_CHILDREN, Number(e.target.value) || 0))
            )
          }
        />
      </label>
      <label>
        tag
        <input
          className="jp-forkd-branch-tag"
          type="text"
          placeholder="optional"
          value={tag}
          onChange={e => setTag(e.target.value)}
        />
      </label>
      <FormButtons
        submitClass="jp-forkd-branch-submit"
        label="Branch"
        busyLabel="Branching…"
        pending={pending}
        onCancel={onDone}
      />
    </form>
  );
}
