/**
 * Follows which sandbox the active notebook's kernel works in: the
 * notebook's magics report it to the server extension
 * (POST /forkd/api/current, docs/labextension.md); the panel asks for the
 * active kernel's entry when the active widget or its kernel changes, and
 * every few seconds after.
 */
import { ILabShell } from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ForkdModel } from './model';

const POLL_MS = 3000;

export class CurrentSandboxTracker {
  private _session: ISessionContext | null = null;
  private _timer: number;

  constructor(
    private readonly _model: ForkdModel,
    labShell: ILabShell | null
  ) {
    if (labShell) {
      labShell.currentChanged.connect((_, change) =>
        this._follow(change.newValue)
      );
      this._follow(labShell.currentWidget);
    }
    this._timer = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  get kernelId(): string | null {
    return this._session?.session?.kernel?.id ?? null;
  }

  async refresh(): Promise<void> {
    const kernelId = this.kernelId;
    if (!kernelId || this._model.state.phase !== 'ready') {
      this._model.setCurrentSandbox(null);
      return;
    }
    try {
      const sandbox = await this._model.api.currentSandbox(kernelId);
      if (kernelId === this.kernelId) {
        this._model.setCurrentSandbox(sandbox);
      }
    } catch {
      // The handshake reports an unavailable server; nothing to add here.
    }
  }

  dispose(): void {
    window.clearInterval(this._timer);
    this._session?.kernelChanged.disconnect(this._onKernelChanged, this);
  }

  private _follow(widget: Widget | null): void {
    // Notebooks and consoles carry a session context; other widgets
    // (the file browser, a text editor) leave the last kernel in place.
    const session = (widget as any)?.sessionContext as
      ISessionContext | undefined;
    if (!session || session === this._session) {
      return;
    }
    this._session?.kernelChanged.disconnect(this._onKernelChanged, this);
    this._session = session;
    session.kernelChanged.connect(this._onKernelChanged, this);
    void session.ready.then(() => this.refresh());
    void this.refresh();
  }

  private _onKernelChanged(): void {
    void this.refresh();
  }
}
