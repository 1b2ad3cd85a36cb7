/**
 * The left-sidebar panel: an icon toolbar (spawn, clear dead, show dead,
 * reload), the connection state (the server extension or the daemon
 * unavailable, the daemon stopped, a stale bundle), a dead current
 * sandbox and its way on, a long action's progress, the last action's
 * error, the branch tree, and a legend with counts.
 */
import {
  addIcon,
  cleaningIcon,
  filterIcon,
  refreshIcon,
  ReactWidget,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { ForkdActions } from './actions';
import { forkIcon } from './icon';
import { ForkdModel } from './model';
import { SpawnForm } from './spawn_form';
import { Timeline } from './timeline_view';
import { SandboxItem, SnapshotItem, TreeIndex } from './tree_view';
import { BUNDLE_VERSION } from './version';

export const PANEL_ID = 'forkd-jupyter:panel';

function Toolbar(props: {
  model: ForkdModel;
  actions: ForkdActions;
  onShowDead: (show: boolean) => void;
}): JSX.Element {
  const { model, actions } = props;
  const [spawning, setSpawning] = useState(false);
  const ready = model.state.phase === 'ready';
  const dead = [...model.sandboxes.values()].filter(
    s => s.status === 'dead'
  ).length;
  return (
    <>
      <div className="jp-forkd-toolbar">
        <span className="jp-forkd-title" title="forkd sandboxes">
          Sandboxes
        </span>
        <ToolbarButtonComponent
          className="jp-forkd-spawn"
          icon={addIcon}
          tooltip="Spawn a fresh sandbox (name and memory)"
          enabled={ready}
          pressed={spawning}
          onClick={() => setSpawning(!spawning)}
        />
        <ToolbarButtonComponent
          className="jp-forkd-clear-dead"
          icon={cleaningIcon}
          tooltip={`Clear dead: remove the records of ${dead} dead sandboxes`}
          enabled={ready && dead > 0}
          onClick={() => void actions.clearDead()}
        />
        <ToolbarButtonComponent
          className="jp-forkd-show-dead"
          icon={filterIcon}
          tooltip={
            model.showDead
              ? 'Dead sandboxes are listed: hide them'
              : 'Dead sandboxes are hidden: list them'
          }
          pressed={!model.showDead}
          onClick={() => props.onShowDead(!model.showDead)}
        />
        <ToolbarButtonComponent
          className="jp-forkd-reload"
          icon={refreshIcon}
          tooltip="Reload everything from the daemon"
          onClick={() => model.reload()}
        />
      </div>
      {spawning && ready && (
        <SpawnForm actions={actions} onDone={() => setSpawning(false)} />
      )}
    </>
  );
}

function StateBanner(props: { model: ForkdModel }): JSX.Element | null {
  const { model } = props;
  const state = model.state;
  switch (state.phase) {
    case 'ready':
      if (state.handshake.extension_version !== BUNDLE_VERSION) {
        return (
          <div className="jp-forkd-banner jp-forkd-banner-error jp-forkd-stale-bundle">
            This page runs the panel of forkd-jupyter {BUNDLE_VERSION}, the
            server has {state.handshake.extension_version}: reload the page (and
            rebuild the labextension if this persists).
          </div>
        );
      }
      return null;
    case 'connecting':
      return (
        <div className="jp-forkd-banner jp-forkd-banner-info">
          Connecting to the daemon…
        </div>
      );
    case 'no-extension':
      return (
        <div className="jp-forkd-banner jp-forkd-banner-error jp-forkd-no-extension">
          {state.message}
        </div>
      );
    case 'no-daemon':
      if (state.stopped) {
        return (
          <div className="jp-forkd-banner jp-forkd-banner-info jp-forkd-daemon-stopped">
            The forkd-jupyter daemon is stopped. The panel looks for it again by
            itself; it starts it only when asked.
            <button
              className="jp-Button jp-mod-styled jp-mod-accept jp-forkd-start-daemon"
              onClick={() => model.startDaemon()}
            >
              Start the daemon
            </button>
          </div>
        );
      }
      return (
        <div className="jp-forkd-banner jp-forkd-banner-error jp-forkd-no-daemon">
          The forkd-jupyter daemon is unavailable: {state.message}
          <div className="jp-forkd-hint">
            Check the machine with <code>forkd-jupyter doctor</code>; the panel
            retries by itself.
          </div>
        </div>
      );
  }
}

function DeadCurrent(props: {
  model: ForkdModel;
  actions: ForkdActions;
}): JSX.Element | null {
  const { model, actions } = props;
  const current = model.currentSandbox
    ? model.sandboxes.get(model.currentSandbox)
    : undefined;
  if (!current || current.status !== 'dead' || model.state.phase !== 'ready') {
    return null;
  }
  const why = current.exit_reason ? ` (${current.exit_reason})` : '';
  return (
    <div className="jp-forkd-banner jp-forkd-banner-info jp-forkd-dead-current">
      This notebook's current sandbox {current.name} is dead{why}.
      <button
        className="jp-Button jp-mod-styled jp-mod-accept jp-forkd-spawn-current"
        title="Spawn a fresh sandbox in this notebook's kernel and make it current"
        onClick={() => void actions.spawnInNotebook()}
      >
        Spawn a fresh one
      </button>
    </div>
  );
}

function ErrorLine(props: { model: ForkdModel }): JSX.Element | null {
  const error = props.model.error;
  if (!error) {
    return null;
  }
  return (
    <div className="jp-forkd-banner jp-forkd-banner-error jp-forkd-action-error">
      <span>{error}</span>
      <button
        className="jp-Button jp-mod-minimal"
        title="Dismiss"
        onClick={() => props.model.setError(null)}
      >
        ✕
      </button>
    </div>
  );
}

/** What the glyphs and words mean, and how many of each there are. */
function Legend(props: { model: ForkdModel }): JSX.Element {
  const sandboxes = [...props.model.sandboxes.values()];
  const count = (f: (s: (typeof sandboxes)[0]) => boolean) =>
    sandboxes.filter(f).length;
  const idle = count(s => s.status === 'running' && !s.busy);
  const busy = count(s => s.status === 'running' && s.busy);
  const dead = count(s => s.status === 'dead');
  return (
    <div className="jp-forkd-legend">
      <span
        className="jp-forkd-status-running"
        title="running, ready for a cell"
      >
        <span className="jp-forkd-glyph">●</span> idle {idle}
      </span>
      <span className="jp-forkd-status-busy" title="running a cell">
        <span className="jp-forkd-glyph">●</span> busy {busy}
      </span>
      <span className="jp-forkd-status-dead" title="stopped; its record stays">
        <span className="jp-forkd-glyph">○</span> dead {dead}
      </span>
      <span title="snapshots (pause shown; children below)">
        <span className="jp-forkd-glyph">◆</span> snapshots{' '}
        {props.model.snapshots.size}
      </span>
      <span title="spawned with live fork: can be branched live, in milliseconds">
        live-fork: branches live
      </span>
    </div>
  );
}

function PanelView(props: {
  model: ForkdModel;
  actions: ForkdActions;
  onShowDead: (show: boolean) => void;
}): JSX.Element {
  const { model, actions } = props;
  const index = new TreeIndex(model);
  const tree = { index, actions, model };
  const empty =
    index.rootSandboxes.length === 0 && index.rootSnapshots.length === 0;
  const handshake =
    model.state.phase === 'ready' ? model.state.handshake : null;
  return (
    <div className="jp-forkd-panel-body">
      <Toolbar model={model} actions={actions} onShowDead={props.onShowDead} />
      <StateBanner model={model} />
      <DeadCurrent model={model} actions={actions} />
      <Timeline model={model} actions={actions} />
      {model.progress && (
        <div className="jp-forkd-banner jp-forkd-banner-info jp-forkd-progress">
          {model.progress}
        </div>
      )}
      <ErrorLine model={model} />
      {model.state.phase === 'ready' && empty && (
        <div className="jp-forkd-empty">
          No sandboxes yet: spawn one here or with %forkd spawn.
        </div>
      )}
      <ul className="jp-forkd-tree">
        {index.rootSandboxes.map(sandbox => (
          <SandboxItem key={sandbox.id} {...tree} sandbox={sandbox} />
        ))}
        {index.rootSnapshots.map(snapshot => (
          <SnapshotItem key={snapshot.id} {...tree} snapshot={snapshot} />
        ))}
      </ul>
      <Legend model={model} />
      {handshake && (
        <div className="jp-forkd-footer">
          extension {handshake.extension_version} · daemon{' '}
          {handshake.daemon?.version} at {handshake.daemon_url}
        </div>
      )}
    </div>
  );
}

export class ForkdPanel extends ReactWidget {
  constructor(
    readonly model: ForkdModel,
    private readonly _actions: ForkdActions,
    private readonly _onShowDead: (show: boolean) => void
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-forkd-panel');
    this.title.icon = forkIcon;
    this.title.caption = 'forkd sandboxes and snapshots';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <PanelView
            model={this.model}
            actions={this._actions}
            onShowDead={this._onShowDead}
          />
        )}
      </UseSignal>
    );
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}
