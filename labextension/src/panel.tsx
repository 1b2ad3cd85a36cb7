/**
 * The left-sidebar panel: a toolbar (spawn, reload), the connection state
 * when the server extension or the daemon is unavailable, the last
 * action's error, and the branch tree.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { ForkdActions } from './actions';
import { forkIcon } from './icon';
import { ForkdModel } from './model';
import { TreeIndex, SandboxItem, SnapshotItem } from './tree_view';

export const PANEL_ID = 'forkd-jupyter:panel';

function Toolbar(props: {
  model: ForkdModel;
  actions: ForkdActions;
}): JSX.Element {
  const [spawning, setSpawning] = useState(false);
  const ready = props.model.state.phase === 'ready';
  const spawn = async () => {
    setSpawning(true);
    await props.actions.spawn();
    setSpawning(false);
  };
  return (
    <div className="jp-forkd-toolbar">
      <span className="jp-forkd-title">forkd sandboxes</span>
      <button
        className="jp-Button jp-mod-styled jp-mod-accept jp-forkd-spawn"
        title="Spawn a fresh sandbox (live-fork capable)"
        disabled={!ready || spawning}
        onClick={() => void spawn()}
      >
        {spawning ? 'Spawning…' : 'Spawn'}
      </button>
      <button
        className="jp-Button jp-mod-styled jp-mod-reject jp-forkd-reload"
        title="Reload the tree from the daemon"
        onClick={() => props.model.reload()}
      >
        Reload
      </button>
    </div>
  );
}

function StateBanner(props: { model: ForkdModel }): JSX.Element | null {
  const state = props.model.state;
  switch (state.phase) {
    case 'ready':
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

function PanelView(props: {
  model: ForkdModel;
  actions: ForkdActions;
}): JSX.Element {
  const { model, actions } = props;
  const index = new TreeIndex(model);
  const tree = { index, actions, currentSandbox: model.currentSandbox };
  const empty =
    index.rootSandboxes.length === 0 && index.rootSnapshots.length === 0;
  const handshake =
    model.state.phase === 'ready' ? model.state.handshake : null;
  return (
    <div className="jp-forkd-panel-body">
      <Toolbar model={model} actions={actions} />
      <StateBanner model={model} />
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
  private readonly _actions: ForkdActions;

  constructor(readonly model: ForkdModel) {
    super();
    this._actions = new ForkdActions(model);
    this.id = PANEL_ID;
    this.addClass('jp-forkd-panel');
    this.title.icon = forkIcon;
    this.title.caption = 'forkd sandboxes and snapshots';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <PanelView model={this.model} actions={this._actions} />}
      </UseSignal>
    );
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}
