/**
 * What the panel's buttons do. Every outcome shows: records the daemon
 * returns are applied at once (the event stream repeats them, harmlessly),
 * a refused action leaves its problem's title and detail in the panel, a
 * slow one marks its row ("Killing…") or reports its progress, and a
 * destructive one asks first.
 */
import {
  Clipboard,
  Dialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';

import { ForkdApiError, IBranchOptions, ISpawnOptions } from './api';
import { ForkdModel } from './model';
import { Checkpoint, stateOf } from './timeline';

/** Runs code in the active notebook's kernel (see current.ts). */
export interface IKernelBridge {
  readonly kernelId: string | null;
  execute(code: string): Promise<void>;
}

/** Opens a terminal inside a sandbox (see terminal.ts). */
export interface ITerminalOpener {
  open(sandboxId: string): Promise<unknown>;
}

export class ForkdActions {
  constructor(
    private readonly _model: ForkdModel,
    private readonly _kernel: IKernelBridge | null = null,
    private readonly _terminals: ITerminalOpener | null = null
  ) {}

  get hasKernel(): boolean {
    return !!this._model.activeKernel && !!this._kernel;
  }

  get canOpenTerminals(): boolean {
    return !!this._terminals;
  }

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

  spawn(options: ISpawnOptions = {}): Promise<boolean> {
    return this._do('Spawn', async () => {
      const sandboxes = await this._model.api.spawn(options);
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
    this._model.setPending(sandboxId, 'Killing…');
    try {
      return await this._do(`Kill of ${sandboxId}`, async () => {
        this._model.applySandbox(await this._model.api.kill(sandboxId));
      });
    } finally {
      this._model.setPending(sandboxId, null);
    }
  }

  openTerminal(sandboxId: string): Promise<boolean> {
    return this._do(`Opening a terminal in ${sandboxId}`, async () => {
      if (!this._terminals) {
        throw new Error('terminals are not available here');
      }
      await this._terminals.open(sandboxId);
    });
  }

  /** The sandboxes and diff snapshots that go with a snapshot, as known here. */
  dependentsOf(snapshotId: string): string[] {
    const out: string[] = [];
    const visit = (id: string) => {
      for (const s of this._model.sandboxes.values()) {
        if (s.parent_snapshot === id) {
          out.push(s.id);
        }
      }
      for (const snap of this._model.snapshots.values()) {
        if (snap.parent === id) {
          out.push(snap.id);
          visit(snap.id);
        }
      }
    };
    visit(snapshotId);
    return out;
  }

  async deleteSnapshot(snapshotId: string): Promise<boolean> {
    let dependents = this.dependentsOf(snapshotId);
    if (!(await this._confirmDelete(snapshotId, dependents))) {
      return false;
    }
    this._model.setPending(snapshotId, 'Deleting…');
    try {
      return await this._do(`Deleting ${snapshotId}`, async () => {
        if (dependents.length === 0) {
          try {
            await this._removeSnapshot(snapshotId, false);
            return;
          } catch (reason) {
            // Dependents that appeared since: ask again, with their names.
            const more = (reason as ForkdApiError).problem?.dependents;
            if (
              !(reason instanceof ForkdApiError) ||
              reason.status !== 409 ||
              !more
            ) {
              throw reason;
            }
            dependents = more;
            if (!(await this._confirmDelete(snapshotId, dependents))) {
              return;
            }
          }
        }
        await this._killAll(dependents, `Deleting ${snapshotId}`);
        await this._removeSnapshot(snapshotId, true);
      });
    } finally {
      this._model.setPending(snapshotId, null);
      this._model.setProgress(null);
    }
  }

  private async _confirmDelete(
    snapshotId: string,
    dependents: string[]
  ): Promise<boolean> {
    const answer = await showDialog(
      dependents.length
        ? {
            title: `Delete ${snapshotId} and its dependents?`,
            body: `These are killed and deleted with it: ${dependents.join(', ')}`,
            buttons: [
              Dialog.cancelButton(),
              Dialog.warnButton({ label: 'Delete all' })
            ]
          }
        : {
            title: `Delete snapshot ${snapshotId}?`,
            body: 'Sandboxes can no longer be spawned from it. Its timings stay.',
            buttons: [
              Dialog.cancelButton(),
              Dialog.warnButton({ label: 'Delete' })
            ]
          }
    );
    return answer.button.accept;
  }

  private async _removeSnapshot(id: string, cascade: boolean): Promise<void> {
    const deleted = await this._model.api.deleteSnapshot(id, cascade);
    this._model.removeSnapshots(
      deleted.filter(d => this._model.snapshots.has(d))
    );
  }

  /**
   * Kills the running sandboxes among `ids` all at once (the daemon kills
   * them in parallel), counting them in the progress line. Ids of
   * snapshots, dead or unknown sandboxes are left to the cascade.
   */
  private async _killAll(ids: string[], what: string): Promise<void> {
    const running = ids.filter(
      id => this._model.sandboxes.get(id)?.status === 'running'
    );
    let done = 0;
    const report = () =>
      this._model.setProgress(
        `${what}: ${done} of ${running.length} sandboxes killed…`
      );
    report();
    await Promise.all(
      running.map(async id => {
        this._model.setPending(id, 'Killing…');
        try {
          this._model.applySandbox(await this._model.api.kill(id));
        } finally {
          this._model.setPending(id, null);
          done += 1;
          report();
        }
      })
    );
  }

  /** Removes the record of every dead sandbox (snapshots of them stay). */
  clearDead(): Promise<boolean> {
    const dead = [...this._model.sandboxes.values()]
      .filter(s => s.status === 'dead')
      .map(s => s.id);
    return this._do('Clearing dead sandboxes', async () => {
      let done = 0;
      this._model.setProgress(`Clearing ${dead.length} dead sandboxes…`);
      try {
        await Promise.all(
          dead.map(async id => {
            await this._model.api.kill(id); // a dead one's record goes
            this._model.removeSandbox(id);
            done += 1;
            this._model.setProgress(
              `Clearing dead sandboxes: ${done} of ${dead.length}…`
            );
          })
        );
      } finally {
        this._model.setProgress(null);
      }
    });
  }

  saveSnapshot(snapshotId: string): Promise<boolean> {
    this._model.setPending(snapshotId, 'Saving…');
    return this._do(`Saving ${snapshotId}`, async () => {
      try {
        this._model.applySnapshot(
          await this._model.api.saveSnapshot(snapshotId)
        );
        Notification.success(`Saved ${snapshotId} to disk`, {
          autoClose: 3000
        });
      } finally {
        this._model.setPending(snapshotId, null);
      }
    });
  }

  /** A checkpoint clicked in the timeline: asks, then checks the
   * notebook's sandbox out there (its kernel runs `%forkd checkout`) or
   * spawns a new sandbox from it. */
  async checkoutAsked(mark: Checkpoint): Promise<boolean> {
    const branch = Dialog.okButton({
      label: 'Branch from here',
      className: 'jp-forkd-branch-here'
    });
    const answer = await showDialog({
      title: `Go back to the state ${stateOf(mark.checkpoint)}?`,
      body:
        `The notebook's sandbox returns to checkpoint ${mark.id} ` +
        `(${stateOf(mark.checkpoint)}); its present state is kept as a ` +
        'snapshot. Or branch a new sandbox from there and leave it as it is.',
      buttons: [
        Dialog.cancelButton(),
        branch,
        Dialog.okButton({ label: 'Check out', className: 'jp-forkd-checkout' })
      ]
    });
    if (answer.button.label === branch.label) {
      return this.spawn({ snapshotId: mark.id });
    }
    if (!answer.button.accept) {
      return false;
    }
    return this._inKernel(`Checking out ${mark.id}`, `checkout ${mark.id}`);
  }

  /** Makes a sandbox the active notebook's current one (in its kernel). */
  useInNotebook(sandboxId: string): Promise<boolean> {
    return this._inKernel(`Using ${sandboxId}`, `use ${sandboxId}`);
  }

  /** Spawns a fresh sandbox in the active notebook's kernel: its current. */
  spawnInNotebook(): Promise<boolean> {
    return this._inKernel('Spawning a sandbox for this notebook', 'spawn');
  }

  private _inKernel(what: string, subcommand: string): Promise<boolean> {
    return this._do(what, async () => {
      if (!this._kernel?.kernelId) {
        throw new Error('no notebook with a running kernel is active');
      }
      await this._kernel.execute(
        "get_ipython().run_line_magic('load_ext', 'forkd_jupyter')\n" +
          `get_ipython().run_line_magic('forkd', ${JSON.stringify(subcommand)})`
      );
    });
  }

  copy(text: string): void {
    Clipboard.copyToSystem(text);
    Notification.success(`Copied ${text}`, { autoClose: 2000 });
  }
}
