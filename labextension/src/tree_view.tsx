/**
 * The branch tree as nested lists: a sandbox, the snapshots taken of it,
 * the sandboxes spawned from each snapshot, and so on. Every row carries
 * data-kind and data-id so it can be found by its record's id.
 */
import React, { useState } from 'react';

import { ForkdActions } from './actions';
import { BranchForm } from './branch_form';
import { formatAge, formatBytes, formatMs } from './format';
import { ForkdModel } from './model';
import { ISandbox, ISnapshot } from './types';

const byCreation = (a: { created_at: number }, b: { created_at: number }) =>
  a.created_at - b.created_at;

/** Children lists, and the roots: records whose parent is unknown here. */
export class TreeIndex {
  readonly rootSandboxes: ISandbox[] = [];
  readonly rootSnapshots: ISnapshot[] = [];
  private readonly _snapshotsOf = new Map<string, ISnapshot[]>();
  private readonly _childrenOf = new Map<string, ISandbox[]>();

  constructor(model: ForkdModel) {
    for (const sandbox of [...model.sandboxes.values()].sort(byCreation)) {
      const parent = sandbox.parent_snapshot;
      if (parent && model.snapshots.has(parent)) {
        push(this._childrenOf, parent, sandbox);
      } else {
        this.rootSandboxes.push(sandbox);
      }
    }
    for (const snapshot of [...model.snapshots.values()].sort(byCreation)) {
      const source = snapshot.source_id;
      if (source && model.sandboxes.has(source)) {
        push(this._snapshotsOf, source, snapshot);
      } else {
        this.rootSnapshots.push(snapshot);
      }
    }
  }

  snapshotsOf(sandboxId: string): ISnapshot[] {
    return this._snapshotsOf.get(sandboxId) ?? [];
  }

  childrenOf(snapshotId: string): ISandbox[] {
    return this._childrenOf.get(snapshotId) ?? [];
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) {
    list.push(value);
  } else {
    map.set(key, [value]);
  }
}

interface ITreeProps {
  index: TreeIndex;
  actions: ForkdActions;
  currentSandbox: string | null;
}

function ActionButton(props: {
  action: string;
  title: string;
  label: string;
  onClick: () => void;
  disabled?: boolean;
}): JSX.Element {
  return (
    <button
      className="jp-Button jp-mod-minimal jp-forkd-action"
      data-action={props.action}
      title={props.title}
      disabled={props.disabled}
      onClick={props.onClick}
    >
      {props.label}
    </button>
  );
}

export function SandboxItem(
  props: ITreeProps & { sandbox: ISandbox }
): JSX.Element {
  const { sandbox, index, actions, currentSandbox } = props;
  const [branching, setBranching] = useState(false);
  const running = sandbox.status === 'running';
  const isCurrent =
    sandbox.id === currentSandbox || sandbox.name === currentSandbox;
  const classes = ['jp-forkd-row', `jp-forkd-status-${sandbox.status}`];
  if (isCurrent) {
    classes.push('jp-forkd-mod-current');
  }
  const details = [
    running
      ? sandbox.busy
        ? 'busy'
        : 'idle'
      : `dead (${sandbox.exit_reason ?? 'exited'})`,
    sandbox.live_fork ? 'live-fork' : null,
    typeof sandbox.execution_count === 'number'
      ? `[${sandbox.execution_count}]`
      : null,
    formatAge(sandbox.created_at)
  ].filter(Boolean);
  return (
    <li className="jp-forkd-node" data-kind="sandbox" data-id={sandbox.id}>
      <div className={classes.join(' ')} title={`sandbox ${sandbox.id}`}>
        <span className="jp-forkd-glyph" aria-hidden="true">
          ●
        </span>
        <span className="jp-forkd-name">{sandbox.name}</span>
        {isCurrent && <span className="jp-forkd-badge">current</span>}
        <span className="jp-forkd-details">{details.join(' · ')}</span>
        <span className="jp-forkd-actions">
          <ActionButton
            action="branch"
            title="Branch: snapshot this sandbox and spawn children"
            label="Branch"
            disabled={!running}
            onClick={() => setBranching(!branching)}
          />
          <ActionButton
            action="copy"
            title="Copy the name"
            label="Copy"
            onClick={() => actions.copy(sandbox.name)}
          />
          <ActionButton
            action="kill"
            title="Kill this sandbox"
            label="Kill"
            disabled={!running}
            onClick={() => void actions.kill(sandbox.id)}
          />
        </span>
      </div>
      {branching && running && (
        <BranchForm
          sandbox={sandbox}
          actions={actions}
          onDone={() => setBranching(false)}
        />
      )}
      <ul className="jp-forkd-children">
        {index.snapshotsOf(sandbox.id).map(snapshot => (
          <SnapshotItem key={snapshot.id} {...props} snapshot={snapshot} />
        ))}
      </ul>
    </li>
  );
}

export function SnapshotItem(
  props: ITreeProps & { snapshot: ISnapshot }
): JSX.Element {
  const { snapshot, index, actions } = props;
  const details = [
    snapshot.mode,
    snapshot.status,
    `pause ${formatMs(snapshot.pause_ms)}`,
    snapshot.ready_ms !== null ? `ready ${formatMs(snapshot.ready_ms)}` : null,
    snapshot.physical_bytes !== null
      ? formatBytes(snapshot.physical_bytes)
      : null,
    snapshot.saved_path ? 'saved' : null
  ].filter(Boolean);
  const name = snapshot.tag ? `${snapshot.id} (${snapshot.tag})` : snapshot.id;
  return (
    <li className="jp-forkd-node" data-kind="snapshot" data-id={snapshot.id}>
      <div
        className={`jp-forkd-row jp-forkd-snapshot jp-forkd-status-${snapshot.status}`}
        title={
          snapshot.error ??
          `snapshot ${snapshot.id} of ${snapshot.source_id ?? '?'}`
        }
      >
        <span className="jp-forkd-glyph" aria-hidden="true">
          ◆
        </span>
        <span className="jp-forkd-name">{name}</span>
        <span className="jp-forkd-details">
          <span className="jp-forkd-mode">{details[0]}</span> ·{' '}
          {details.slice(1).join(' · ')}
        </span>
        <span className="jp-forkd-actions">
          <ActionButton
            action="spawn"
            title="Spawn a sandbox from this snapshot"
            label="Spawn"
            disabled={snapshot.status === 'failed'}
            onClick={() => void actions.spawn(snapshot.id)}
          />
          <ActionButton
            action="copy"
            title="Copy the id"
            label="Copy"
            onClick={() => actions.copy(snapshot.id)}
          />
          <ActionButton
            action="delete"
            title="Delete this snapshot"
            label="Delete"
            onClick={() => void actions.deleteSnapshot(snapshot.id)}
          />
        </span>
      </div>
      <ul className="jp-forkd-children">
        {index.childrenOf(snapshot.id).map(child => (
          <SandboxItem key={child.id} {...props} sandbox={child} />
        ))}
      </ul>
    </li>
  );
}
