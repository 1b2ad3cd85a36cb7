/**
 * What the panel's buttons do. Every outcome shows: records the daemon
 * returns are applied at once (the event stream repeats them, harmlessly),
 * and a refused action leaves its problem's title and detail in the panel.
 */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';

import { ForkdApiError, IBranchOptions } from './api';
import { ForkdModel } from './model';

export class ForkdActions {
  constructor(private readonly _model: ForkdModel) {}

  private async _do(
    what: string,
    action: () => Promise<void>
  ): Promise<boolean> {
    this._model.setError(null);
    try {
      await action();
      return true;
    } catch (reason) {
      const message = reason instanceof Error ? reason.message : String(reason);
      this._model.setError(`${what} failed: ${message}`);
      return false;
    }
  }

  spawn(snapshotId?: string): Promise<boolean> {
    return this._do('Spawn', async () => {
      const sandboxes = await this._model.api.spawn(snapshotId);
      sandboxes.forEach(record => this._model.applySandbox(record));
    });
  }

  branch(sandboxId: string, options: IBranchOptions): Promise<boolean> {
    return this._do(`Branch of ${sandboxId}`, async () => {
      const reply = await this._model.api.branch(sandboxId, options);
      this._model.applySnapshot(reply.snapshot);
      reply.children.forEach(record => this._model.applySandbox(record));
    });
  }

  async kill(sandboxId: string): Promise<boolean> {
    const answer = await showDialog({
      title: `Kill sandbox ${sandboxId}?`,
      body: 'Its memory and running state are lost; snapshots taken of it stay.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Kill' })]
    });
    if (!answer.button.accept) {
      return false;
    }
    return this._do(`Kill of ${sandboxId}`, async () => {
      this._model.applySandbox(await this._model.api.kill(sandboxId));
    });
  }

  deleteSnapshot(snapshotId: string): Promise<boolean> {
    return this._do(`Deleting ${snapshotId}`, async () => {
      let deleted: string[];
      try {
        deleted = await this._model.api.deleteSnapshot(snapshotId, false);
      } catch (reason) {
        const dependents = (reason as ForkdApiError).problem?.dependents;
        if (
          !(reason instanceof ForkdApiError) ||
          reason.status !== 409 ||
          !dependents
        ) {
          throw reason;
        }
        const answer = await showDialog({
          title: `Delete ${snapshotId} and its dependents?`,
          body: `These are killed and deleted with it: ${dependents.join(', ')}`,
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: 'Delete all' })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        deleted = await this._model.api.deleteSnapshot(snapshotId, true);
      }
      this._model.removeSnapshots(
        deleted.filter(id => this._model.snapshots.has(id))
      );
    });
  }

  copy(text: string): void {
    Clipboard.copyToSystem(text);
  }
}
