/**
 * The branch tree as nested lists: a sandbox, the snapshots taken of it,
 * the sandboxes spawned from each snapshot, and so on. Every row carries
 * data-kind and data-id so it can be found by its record's id; its actions
 * are icon buttons (with tooltips) carrying data-action, shown on hover.
 */
import {
  addIcon,
  copyIcon,
  deleteIcon,
  LabIcon,
  runIcon,
  saveIcon,
  stopIcon,
  terminalIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { ForkdActions } from './actions';
import { BranchForm } from './branch_form';
import { formatAge, formatBytes, formatMs } from './format';
import { forkIcon } from './icon';
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
    const hasSnapshots = new Set(
      [...model.snapshots.values()].map(s => s.source_id)
    );
    // Hiding dead sandboxes hides those with nothing under them (a dead
    // sandbox with snapshots still carries its lineage), never the current.
    const shown = (s: ISandbox) =>
      model.showDead ||
      s.status !== 'dead' ||
      hasSnapshots.has(s.id) ||
      s.id === model.currentSandbox;
    for (const sandbox of [...model.sandboxes.values()]
      .filter(shown)
      .sort(byCreation)) {
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
  model: ForkdModel;
}

function ActionButton(props: {
  action: string;
  tooltip: string;
  icon: LabIcon;
  onClick: () => void;
  enabled?: boolean;
}): JSX.Element {
  return (
    <ToolbarButtonComponent
      className="jp-forkd-action"
      dataset={{ action: props.action }}
      tooltip={props.tooltip}
      icon={props.icon}
      enabled={props.enabled ?? true}
      onClick={props.onClick}
    />
  );
}

/** The one vocabulary of sandbox states (also the widgets' and magics'). */
export function stateWord(sandbox: ISandbox): string {
  if (sandbox.status === 'dead') {
    return `dead (${sandbox.exit_reason ?? 'exited'})`;
  }
  return sandbox.busy ? 'busy' : 'idle';
}

export function SandboxItem(
  props: ITreeProps & { sandbox: ISandbox }
): JSX.Element {
  const { sandbox, index, actions, model } = props;
  const [branching, setBranching] = useState(false);
  const running = sandbox.status === 'running';
  const current = model.currentSandbox;
  const isCurrent = sandbox.id === current || sandbox.name === current;
  const pending = model.pending.get(sandbox.id);
  const classes = [
    'jp-forkd-row',
    `jp-forkd-status-${sandbox.status}`,
    sandbox.busy ? 'jp-forkd-status-busy' : ''
  ];
  if (isCurrent) {
    classes.push('jp-forkd-mod-current');
  }
  const details = [
    stateWord(sandbox),
    sandbox.node ? `on ${sandbox.node}` : null,
    sandbox.live_fork ? 'live-fork' : null,
    sandbox.memory_limit_mib ? formatMiB(sandbox.memory_limit_mib) : null,
    typeof sandbox.execution_count === 'number'
      ? `[${sandbox.execution_count}]`
      : null,
    formatAge(sandbox.created_at)
  ].filter(Boolean);
  return (
    <li className="jp-forkd-node" data-kind="sandbox" data-id={sandbox.id}>
      <div
        className={classes.join(' ')}
        data-node={sandbox.node ?? undefined}
        title={`sandbox ${sandbox.id}${sandbox.name !== sandbox.id ? ` (${sandbox.name})` : ''}${sandbox.node ? ` on node ${sandbox.node}` : ''}`}
      >
        <span className="jp-forkd-glyph" aria-hidden="true">
          {running ? '●' : '○'}
        </span>
        <span className="jp-forkd-name">{sandbox.name}</span>
        {isCurrent && <span className="jp-forkd-badge">current</span>}
        <span className="jp-forkd-actions">
          <ActionButton
            action="use"
            tooltip="Use in this notebook: %%forkd cells of the active notebook run here"
            icon={runIcon}
            enabled={running && actions.hasKernel && !isCurrent}
            onClick={() => void actions.useInNotebook(sandbox.id)}
          />
          <ActionButton
            action="branch"
            tooltip="Branch: snapshot this sandbox and spawn children"
            icon={forkIcon}
            enabled={running && !pending}
            onClick={() => setBranching(!branching)}
          />
          <ActionButton
            action="terminal"
            tooltip="Terminal: open a shell in this sandbox, in a new tab"
            icon={terminalIcon}
            enabled={running && actions.canOpenTerminals && !pending}
            onClick={() => void actions.openTerminal(sandbox.id)}
          />
          <ActionButton
            action="copy"
            tooltip="Copy the name"
            icon={copyIcon}
            onClick={() => actions.copy(sandbox.name)}
          />
          <ActionButton
            action="kill"
            tooltip="Kill this sandbox"
            icon={stopIcon}
            enabled={running && !pending}
            onClick={() => void actions.kill(sandbox.id)}
          />
        </span>
        <span className="jp-forkd-details">
          {pending ? <span className="jp-forkd-pending">{pending}</span> : null}
          {details.join(' · ')}
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
  const { snapshot, index, actions, model } = props;
  const pending = model.pending.get(snapshot.id);
  const details = [
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
        <span className="jp-forkd-actions">
          <ActionButton
            action="spawn"
            tooltip="Spawn a sandbox from this snapshot"
            icon={addIcon}
            enabled={snapshot.status !== 'failed' && !pending}
            onClick={() => void actions.spawn({ snapshotId: snapshot.id })}
          />
          <ActionButton
            action="save"
            tooltip="Save snapshot: keep it on disk across daemon restarts"
            icon={saveIcon}
            enabled={
              snapshot.status === 'ready' && !snapshot.saved_path && !pending
            }
            onClick={() => void actions.saveSnapshot(snapshot.id)}
          />
          <ActionButton
            action="copy"
            tooltip="Copy the id"
            icon={copyIcon}
            onClick={() => actions.copy(snapshot.id)}
          />
          <ActionButton
            action="delete"
            tooltip="Delete this snapshot"
            icon={deleteIcon}
            enabled={!pending}
            onClick={() => void actions.deleteSnapshot(snapshot.id)}
          />
        </span>
        <span className="jp-forkd-details">
          {pending ? <span className="jp-forkd-pending">{pending}</span> : null}
          <span className="jp-forkd-mode">{snapshot.mode}</span> ·{' '}
          {details.join(' · ')}
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

function formatMiB(mib: number): string {
  return mib >= 1024
    ? `${(mib / 1024).toFixed(mib % 1024 ? 1 : 0)} GiB`
    : `${mib} MiB`;
}
