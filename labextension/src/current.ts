/**
 * Follows which sandbox the active notebook's kernel works in: the
 * notebook's magics report it to the server extension
 * (POST /forkd/api/current, docs/labextension.md); the panel asks for the
 * active kernel's entry when the active widget or its kernel changes, and
 * every few seconds after. It is also the panel's way into that kernel
 * ("use in this notebook": code run there, so the notebook's own magics
 * session changes and reports back).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IKernelBridge } from './actions';
import { ForkdModel } from './model';
import { UndoneCells } from './undone';

const POLL_MS = 3000;

export class CurrentSandboxTracker implements IKernelBridge {
  private _session: ISessionContext | null = null;
  private _timer: number;
  private readonly _undone = new UndoneCells();

  /**
   * `shell`: JupyterLab's or Notebook 7's; both tell which widget is
   * current (Notebook 7's notebook page has just the one notebook).
   */
  constructor(
    private readonly _model: ForkdModel,
    shell: JupyterFrontEnd.IShell
  ) {
    shell.currentChanged?.connect((_, change) => this._follow(change.newValue));
    this._follow(shell.currentWidget);
    this._timer = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  get kernelId(): string | null {
    return this._session?.session?.kernel?.id ?? null;
  }

  async refresh(): Promise<void> {
    const kernelId = this.kernelId;
    this._model.setActiveKernel(kernelId);
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

  /** Runs `code` in the active kernel (not in any cell, nothing kept in its
   * history); rejects with the kernel's error, then re-reads the current
   * sandbox. */
  async execute(code: string): Promise<void> {
    const kernel = this._session?.session?.kernel;
    if (!kernel) {
      throw new Error('no notebook with a running kernel is active');
    }
    let stderr = '';
    const future = kernel.requestExecute({ code, store_history: false });
    future.onIOPub = msg => {
      const content = msg.content as any;
      if (msg.header.msg_type === 'stream' && content.name === 'stderr') {
        stderr += content.text;
      }
    };
    const reply = await future.done;
    const content = reply.content as any;
    if (content.status !== 'ok') {
      throw new Error(
        `${content.ename ?? 'error'}: ${content.evalue ?? ''}`.trim()
      );
    }
    const usage = stderr
      .split('\n')
      .find(line => line.startsWith('UsageError: '));
    if (usage) {
      throw new Error(usage.slice('UsageError: '.length));
    }
    await this.refresh();
    // The magics report the change to the server in the background.
    window.setTimeout(() => void this.refresh(), 500);
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
    this._undone.watch(widget);
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
