/**
 * Marks the notebook's cells whose effects were undone: a checkout in
 * attach mode (`%forkd undo`, `%forkd checkout`, the timeline) publishes
 * `{"forkd": {"undone": [...], "kept": [...]}}` in a display's metadata,
 * execution counts of the cells the sandbox no longer has, and has again
 * (docs/time-travel.md). Each watched notebook keeps its set; a cell is
 * marked while its current execution count is in it, so running it again
 * clears the mark.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { KernelMessage } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

export const UNDONE_CLASS = 'jp-forkd-undone';

interface INotebookLike extends Widget {
  sessionContext: ISessionContext;
  content?: { widgets?: ReadonlyArray<Widget & { model?: any }> };
}

export class UndoneCells {
  private readonly _watched = new WeakSet<Widget>();
  private readonly _undone = new WeakMap<Widget, Set<number>>();

  /** Follows a notebook's kernel messages (once per notebook). */
  watch(widget: Widget | null): void {
    const notebook = widget as INotebookLike | null;
    if (!notebook?.sessionContext || !notebook.content) {
      return;
    }
    if (this._watched.has(notebook)) {
      return;
    }
    this._watched.add(notebook);
    this._undone.set(notebook, new Set());
    const onMessage = (_: unknown, msg: KernelMessage.IMessage) =>
      this._onMessage(notebook, msg);
    notebook.sessionContext.iopubMessage.connect(onMessage);
    notebook.disposed.connect(() =>
      notebook.sessionContext.iopubMessage?.disconnect(onMessage)
    );
  }

  private _onMessage(
    notebook: INotebookLike,
    msg: KernelMessage.IMessage
  ): void {
    const type = msg.header.msg_type;
    if (type === 'display_data') {
      const mark = (msg.content as any)?.metadata?.forkd;
      if (!mark || !Array.isArray(mark.undone)) {
        return;
      }
      const undone = this._undone.get(notebook)!;
      mark.undone.forEach((n: number) => undone.add(n));
      (mark.kept ?? []).forEach((n: number) => undone.delete(n));
      this._apply(notebook);
    } else if (type === 'execute_input' || type === 'status') {
      // A cell that runs again gets a new count: its mark goes.
      window.requestAnimationFrame(() => this._apply(notebook));
    }
  }

  private _apply(notebook: INotebookLike): void {
    const undone = this._undone.get(notebook);
    for (const cell of notebook.content?.widgets ?? []) {
      const count = cell.model?.executionCount;
      const marked = typeof count === 'number' && !!undone?.has(count);
      cell.toggleClass(UNDONE_CLASS, marked);
      if (marked) {
        cell.node.title =
          'Its effects were undone: the sandbox went back to an earlier cell';
      } else if (cell.node.title.startsWith('Its effects were undone')) {
        cell.node.title = '';
      }
    }
  }
}
