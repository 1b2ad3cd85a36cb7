import React, { useState } from 'react';

import { ForkdActions } from './actions';

const MEMORY_CHOICES_MIB = [256, 512, 1024, 2048, 4096, 8192];
const DEFAULT_MEMORY_MIB = 2048;

/** Spawn a fresh sandbox: an optional name and its guest memory. */
export function SpawnForm(props: {
  actions: ForkdActions;
  onDone: () => void;
}): JSX.Element {
  const { actions, onDone } = props;
  const [name, setName] = useState('');
  const [memory, setMemory] = useState(DEFAULT_MEMORY_MIB);
  const [pending, setPending] = useState(false);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setPending(true);
    const ok = await actions.spawn({
      name: name.trim() || undefined,
      memoryMiB: memory
    });
    setPending(false);
    if (ok) {
      onDone();
    }
  };

  return (
    <form className="jp-forkd-spawn-form" onSubmit={submit}>
      <label>
        name
        <input
          className="jp-forkd-spawn-name"
          type="text"
          placeholder="optional"
          value={name}
          onChange={e => setName(e.target.value)}
        />
      </label>
      <label>
        memory
        <select
          className="jp-forkd-spawn-memory"
          value={memory}
          onChange={e => setMemory(Number(e.target.value))}
        >
          {MEMORY_CHOICES_MIB.map(m => (
            <option key={m} value={m}>
              {m >= 1024 ? `${m / 1024} GiB` : `${m} MiB`}
            </option>
          ))}
        </select>
      </label>
      <button
        type="submit"
        className="jp-Button jp-mod-styled jp-mod-accept jp-forkd-spawn-submit"
        disabled={pending}
      >
        {pending ? 'Spawning…' : 'Spawn'}
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
