/**
 * The panel's picture of the daemon: every sandbox and snapshot record,
 * kept current by loading /v1/tree once and then applying the event
 * stream; reloaded from scratch whenever the stream breaks (every
 * reconnection is a full resynchronisation, then events).
 *
 * Invariant: the panel starts the daemon only on its first connection or
 * when the user asks (`startDaemon`); once it has been connected, a daemon
 * that went away is reported (stopped, or unavailable) and only looked for.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { ForkdApi, ForkdApiError } from './api';
import { DaemonEventStream } from './events';
import {
  IHandshake,
  ISandbox,
  ISandboxEvent,
  ISnapshot,
  ISnapshotEvent
} from './types';

export type ConnectionState =
  | { phase: 'connecting' }
  | { phase: 'ready'; handshake: IHandshake }
  | { phase: 'no-extension'; message: string }
  | { phase: 'no-daemon'; message: string; stopped: boolean };

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;

export class ForkdModel {
  readonly sandboxes = new Map<string, ISandbox>();
  readonly snapshots = new Map<string, ISnapshot>();
  state: ConnectionState = { phase: 'connecting' };
  /** The last action's error, until dismissed or the next action. */
  error: string | null = null;
  /** The sandbox the active notebook's kernel works in, if any. */
  currentSandbox: string | null = null;
  /** The active notebook's (or console's) kernel, if any. */
  activeKernel: string | null = null;
  /** Whether dead sandboxes are listed (the `showDead` setting). */
  showDead = true;
  /** Rows with an action under way: record id -> what is happening. */
  readonly pending = new Map<string, string>();
  /** A long action's progress, shown above the tree. */
  progress: string | null = null;

  private _seq = 0;
  /** Bumped by each sync; a sync that is no longer the latest stops. */
  private _generation = 0;
  private _retryMs = RETRY_MIN_MS;
  private _retryTimer: number | null = null;
  private _disposed = false;
  /** Set once connected: from then on the daemon is never started unasked. */
  private _connectedOnce = false;
  private _startAsked = false;
  private readonly _stream: DaemonEventStream;
  private readonly _changed = new Signal<this, void>(this);

  constructor(readonly api: ForkdApi) {
    this._stream = new DaemonEventStream(api);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  start(): void {
    void this._sync();
  }

  /** Starts the daemon if it is stopped, then connects: the user asked. */
  startDaemon(): void {
    this._startAsked = true;
    this.reload();
  }

  setActiveKernel(id: string | null): void {
    if (id !== this.activeKernel) {
      this.activeKernel = id;
      this._changed.emit();
    }
  }

  setShowDead(show: boolean): void {
    if (show !== this.showDead) {
      this.showDead = show;
      this._changed.emit();
    }
  }

  setPending(id: string, what: string | null): void {
    if (what === null) {
      this.pending.delete(id);
    } else {
      this.pending.set(id, what);
    }
    this._changed.emit();
  }

  setProgress(what: string | null): void {
    this.progress = what;
    this._changed.emit();
  }

  /** Drops the current stream and loads everything again now. */
  reload(): void {
    this._stream.close();
    this._clearRetry();
    this._retryMs = RETRY_MIN_MS;
    void this._sync();
  }

  dispose(): void {
    this._disposed = true;
    this._stream.close();
    this._clearRetry();
  }

  setError(message: string | null): void {
    this.error = message;
    this._changed.emit();
  }

  setCurrentSandbox(id: string | null): void {
    if (id !== this.currentSandbox) {
      this.currentSandbox = id;
      this._changed.emit();
    }
  }

  applySandbox(record: ISandbox): void {
    this.sandboxes.set(record.id, record);
    this._changed.emit();
  }

  applySnapshot(record: ISnapshot): void {
    this.snapshots.set(record.id, record);
    this._changed.emit();
  }

  removeSandbox(id: string): void {
    if (this.sandboxes.delete(id)) {
      this._changed.emit();
    }
  }

  removeSnapshots(ids: string[]): void {
    ids.forEach(id => this.snapshots.delete(id));
    this._changed.emit();
  }

  private _setState(state: ConnectionState): void {
    this.state = state;
    this._changed.emit();
  }

  private async _sync(): Promise<void> {
    if (this._disposed) {
      return;
    }
    const generation = ++this._generation;
    const stale = () => this._disposed || generation !== this._generation;
    let handshake: IHandshake;
    const start = !this._connectedOnce || this._startAsked;
    this._startAsked = false;
    try {
      handshake = await this.api.handshake(start);
    } catch (reason) {
      if (stale()) {
        return;
      }
      this._setState({
        phase: 'no-extension',
        message: describeMissingExtension(reason)
      });
      return this._retryLater();
    }
    if (stale()) {
      return;
    }
    if (handshake.daemon_error || !handshake.daemon) {
      this._setState({
        phase: 'no-daemon',
        message: handshake.daemon_error ?? 'the daemon did not answer',
        stopped: handshake.daemon_stopped === true
      });
      return this._retryLater();
    }
    try {
      const tree = await this.api.tree();
      if (stale()) {
        return;
      }
      this.sandboxes.clear();
      this.snapshots.clear();
      for (const node of tree.nodes) {
        const { kind, label, ...record } = node;
        if (kind === 'sandbox') {
          this.sandboxes.set(record.id, record as ISandbox);
        } else {
          this.snapshots.set(record.id, record as ISnapshot);
        }
      }
      this._seq = tree.seq;
      this._retryMs = RETRY_MIN_MS;
      this._connectedOnce = true;
      this._setState({ phase: 'ready', handshake });
      await this._stream.read(this._seq, (name, data) => {
        if (!stale()) {
          this._onEvent(name, data);
        }
      });
    } catch (reason) {
      if (stale()) {
        return;
      }
      this._setState({
        phase: 'no-daemon',
        message: String((reason as Error).message ?? reason),
        stopped: false
      });
    }
    if (!stale()) {
      this._retryLater();
    }
  }

  private _onEvent(name: string, data: any): void {
    if (typeof data?.seq === 'number') {
      if (data.seq <= this._seq) {
        return; // already in the tree this stream started from
      }
      this._seq = data.seq;
    }
    if (name === 'sandbox') {
      const event = data as ISandboxEvent;
      if (event.action === 'removed') {
        this.sandboxes.delete(event.sandbox.id);
        this._changed.emit();
      } else {
        this.applySandbox(event.sandbox);
      }
    } else if (name === 'snapshot') {
      const event = data as ISnapshotEvent;
      if (event.action === 'deleted') {
        this.removeSnapshots([event.snapshot.id]);
      } else {
        this.applySnapshot(event.snapshot);
      }
    }
  }

  private _retryLater(): void {
    if (this._disposed) {
      return;
    }
    this._clearRetry();
    this._retryTimer = window.setTimeout(() => {
      this._retryTimer = null;
      void this._sync();
    }, this._retryMs);
    this._retryMs = Math.min(this._retryMs * 2, RETRY_MAX_MS);
  }

  private _clearRetry(): void {
    if (this._retryTimer !== null) {
      window.clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
  }
}

function describeMissingExtension(reason: unknown): string {
  if (reason instanceof ForkdApiError && reason.status === 404) {
    return (
      'The forkd-jupyter server extension is not enabled in this Jupyter server ' +
      '(enable it with `jupyter server extension enable forkd_jupyter.labext` ' +
      'and restart JupyterLab).'
    );
  }
  return `The forkd-jupyter server extension does not answer: ${String(
    (reason as Error)?.message ?? reason
  )}`;
}
