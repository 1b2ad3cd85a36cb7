/**
 * forkd-jupyter's JupyterLab extension: a left-sidebar panel showing every
 * sandbox and snapshot of the user's daemon, through the server extension
 * at /forkd/api (forkd_jupyter/labext).
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { ForkdApi } from './api';
import { CurrentSandboxTracker } from './current';
import { ForkdModel } from './model';
import { ForkdPanel, PANEL_ID } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'forkd-jupyter:plugin',
  description: 'A sidebar panel for the forkd-jupyter sandboxes and snapshots',
  autoStart: true,
  optional: [ILabShell, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    restorer: ILayoutRestorer | null
  ) => {
    const model = new ForkdModel(
      new ForkdApi(app.serviceManager.serverSettings)
    );
    const panel = new ForkdPanel(model);
    const tracker = new CurrentSandboxTracker(model, labShell);
    panel.disposed.connect(() => tracker.dispose());
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, PANEL_ID);
    model.start();
  }
};

export default plugin;
