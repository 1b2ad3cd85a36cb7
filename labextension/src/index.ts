/**
 * forkd-jupyter's JupyterLab extension: a left-sidebar panel showing every
 * sandbox and snapshot of the user's daemon, through the server extension
 * at /forkd/api (forkd_jupyter/labext), and terminals inside sandboxes as
 * main-area tabs (command forkd:open-terminal, args {sandboxId}).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IThemeManager } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { terminalIcon } from '@jupyterlab/ui-components';

import { ForkdActions } from './actions';
import { ForkdApi } from './api';
import { CurrentSandboxTracker } from './current';
import { ForkdModel } from './model';
import { ForkdPanel, PANEL_ID } from './panel';
import {
  FOLLOWED_OPTIONS,
  FollowedOptions,
  OPEN_TERMINAL_COMMAND,
  SandboxTerminals
} from './terminal';

const PLUGIN_ID = 'forkd-jupyter:plugin';
/** JupyterLab's terminal settings, which sandbox terminals follow. */
const TERMINAL_SETTINGS_ID = '@jupyterlab/terminal-extension:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar panel for the forkd-jupyter sandboxes and snapshots',
  autoStart: true,
  optional: [ILayoutRestorer, ISettingRegistry, IThemeManager],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    registry: ISettingRegistry | null,
    themes: IThemeManager | null
  ) => {
    const model = new ForkdModel(
      new ForkdApi(app.serviceManager.serverSettings)
    );
    const tracker = new CurrentSandboxTracker(model, app.shell);
    const terminals = new SandboxTerminals(app, model, themes);
    app.commands.addCommand(OPEN_TERMINAL_COMMAND, {
      label: 'Open a Terminal in a Sandbox',
      caption: 'A shell inside the sandbox, in a new tab',
      icon: terminalIcon,
      execute: args => terminals.open(args.sandboxId as string)
    });
    let settings: ISettingRegistry.ISettings | null = null;
    // The toolbar's toggle writes the setting; the setting drives the model.
    const setShowDead = (show: boolean) => {
      model.setShowDead(show);
      void settings?.set('showDead', show);
    };
    const panel = new ForkdPanel(
      model,
      new ForkdActions(model, tracker, terminals),
      setShowDead
    );
    panel.disposed.connect(() => {
      tracker.dispose();
      terminals.dispose();
    });
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
      // Absent when JupyterLab's terminals are: the widget's defaults then.
      void registry.load(TERMINAL_SETTINGS_ID).then(
        loaded => {
          const apply = () => {
            const options: Record<string, unknown> = {};
            for (const key of FOLLOWED_OPTIONS) {
              options[key] = loaded.get(key).composite;
            }
            terminals.setOptions(options as FollowedOptions);
          };
          apply();
          loaded.changed.connect(apply);
        },
        () => undefined
      );
    }
  }
};

export default plugin;
