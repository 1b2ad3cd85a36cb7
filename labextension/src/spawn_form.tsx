import React, { useState } from 'react';

import { ForkdActions } from './actions';
import { FormButtons, useSubmit } from './form_parts';

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
  const { pending, submit } = useSubmit(
    () => actions.spawn({ name: name.trim() || undefined, memoryMiB: memory }),
    onDone
  );

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
      <FormButtons
        submitClass="jp-forkd-spawn-submit"
        label="Spawn"
        busyLabel="Spawning…"
        pending={pending}
        onCancel={onDone}
      />
    </form>
  );
}
