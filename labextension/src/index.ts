/**
 * forkd-jupyter's JupyterLab extension: a left-sidebar panel showing every
 * sandbox and snapshot of the user's daemon, through the server extension
 * at /forkd/api (forkd_jupyter/labext).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { ForkdActions } from './actions';
import { ForkdApi } from './api';
import { CurrentSandboxTracker } from './current';
import { ForkdModel } from './model';
import { ForkdPanel, PANEL_ID } from './panel';

const PLUGIN_ID = 'forkd-jupyter:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar panel for the forkd-jupyter sandboxes and snapshots',
  autoStart: true,
  optional: [ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    registry: ISettingRegistry | null
  ) => {
    const model = new ForkdModel(
      new ForkdApi(app.serviceManager.serverSettings)
    );
    const tracker = new CurrentSandboxTracker(model, app.shell);
    let settings: ISettingRegistry.ISettings | null = null;
    // The toolbar's toggle writes the setting; the setting drives the model.
    const setShowDead = (show: boolean) => {
      model.setShowDead(show);
      void settings?.set('showDead', show);
    };
    const panel = new ForkdPanel(
      model,
      new ForkdActions(model, tracker),
      setShowDead
    );
    panel.disposed.connect(() => tracker.dispose());
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, PANEL_ID);
    model.start();
    if (registry) {
      void registry.load(PLUGIN_ID).then(loaded => {
        settings = loaded;
        const apply = () =>
          model.setShowDead(loaded.get('showDead').composite as boolean);
        apply();
        loaded.changed.connect(apply);
      });
    }
  }
};

export default plugin;
