import React, { useState } from 'react';

import { ForkdActions } from './actions';
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
  const [pending, setPending] = useState(false);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setPending(true);
    const ok = await actions.branch(sandbox.id, {
      mode,
      count,
      tag: tag.trim()
    });
    setPending(false);
    if (ok) {
      onDone();
    }
  };

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
      <button
        type="submit"
        className="jp-Button jp-mod-styled jp-mod-accept jp-forkd-branch-submit"
        disabled={pending}
      >
        {pending ? 'Branching…' : 'Branch'}
      </button>
      <button
        type="button"
        className="jp-Button jp-mod-styled jp-mod-reject"
        onClick={onDone}
      >
        Cancel
      </button>
    </form>
  );
}
