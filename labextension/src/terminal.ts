/**
 * Terminals inside sandboxes, as main-area tabs showing JupyterLab's own
 * terminal widget (xterm.js): the daemon runs the sandbox's shell on a
 * pseudo-terminal (POST v1/sandboxes/<sid>/terminals), the widget talks to
 * it through the server extension's relay (terminal_connection.ts).
 *
 * Invariants: a tab lives as long as its terminal. It closes when the
 * terminal's program ends (the `disconnect` message disposes the
 * connection, and the widget with it), when its sandbox stops running,
 * when its socket could never be set up, or when the socket closed and the
 * terminal is found ended; closing it (any of these ways, or by the user)
 * closes its socket and hangs the terminal up with a DELETE (an ended one
 * is left as it is).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  IThemeManager,
  MainAreaWidget,
  Notification
} from '@jupyterlab/apputils';
import type { ITerminal, Terminal } from '@jupyterlab/terminal';
import { terminalIcon } from '@jupyterlab/ui-components';

import { ForkdApiError } from './api';
import { ForkdModel } from './model';
import { SandboxTerminalConnection } from './terminal_connection';
import { ISandbox } from './types';

export const OPEN_TERMINAL_COMMAND = 'forkd:open-terminal';

/** The size asked for at creation; the widget sends its own right after. */
const INITIAL_SIZE = { cols: 80, rows: 24 };

/** The options of JupyterLab's terminal settings that sandbox terminals
 * follow too. Not shutdownOnClose and closeOnExit: a sandbox terminal's
 * tab is always its only view, so it always hangs up when closed and
 * closes when its program ends. */
export const FOLLOWED_OPTIONS = [
  'fontFamily',
  'fontSize',
  'lineHeight',
  'theme',
  'screenReaderMode',
  'scrollback',
  'pasteWithCtrlV',
  'macOptionIsMeta',
  'cursorBlink'
] as const;

export type FollowedOptions = Partial<
  Pick<ITerminal.IOptions, (typeof FOLLOWED_OPTIONS)[number]>
>;

/** Sets a terminal's option once its xterm exists (setOption needs it). */
function setOption<K extends keyof FollowedOptions>(
  terminal: Terminal,
  key: K,
  value: FollowedOptions[K]
): void {
  terminal.ready
    .then(() => {
      if (!terminal.isDisposed) {
        terminal.setOption(key, value as ITerminal.IOptions[K]);
      }
    })
    .catch(() => undefined); // the widget reports its own failure
}

interface IOpenTerminal {
  sandboxId: string;
  terminalId: string;
  widget: MainAreaWidget<Terminal>;
  /** Whether the model has listed the sandbox since: a sandbox it has not
   * caught up with yet is not taken for a removed one. */
  seen: boolean;
}

export class SandboxTerminals {
  private readonly _open = new Set<IOpenTerminal>();
  private _options: FollowedOptions = { theme: 'inherit' };

  constructor(
    private readonly _app: JupyterFrontEnd,
    private readonly _model: ForkdModel,
    themes: IThemeManager | null = null
  ) {
    // 'inherit' reads the page's colours when set: set it again on change.
    themes?.themeChanged.connect(() =>
      this._open.forEach(t =>
        setOption(t.widget.content, 'theme', this._options.theme ?? 'inherit')
      )
    );
    _model.changed.connect(this._closeWhereSandboxStopped, this);
  }

  /** JupyterLab's terminal settings (FOLLOWED_OPTIONS of them), for new
   * terminals and the open ones. */
  setOptions(options: FollowedOptions): void {
    // Unset ones keep the widget's defaults (an older JupyterLab's
    // settings lack some).
    const set = Object.entries(options).filter(([, v]) => v !== undefined);
    this._options = { theme: 'inherit', ...Object.fromEntries(set) };
    for (const { widget } of this._open) {
      for (const [key, value] of set) {
        setOption(widget.content, key as keyof FollowedOptions, value);
      }
    }
  }

  /** Opens a new terminal in the sandbox, in a tab of the main area. */
  async open(sandbox: string): Promise<MainAreaWidget<Terminal>> {
    const known = this._find(sandbox);
    if (known && known.status !== 'running') {
      throw new Error(`sandbox ${known.name} is not running`);
    }
    const sandboxId = known?.id ?? sandbox;
    // Loaded on first use: the panel works in a front end without it.
    const { Terminal } = await import('@jupyterlab/terminal');
    const api = this._model.api;
    const record = await api.openTerminal(sandboxId, INITIAL_SIZE);
    const connection = new SandboxTerminalConnection(
      api.settings,
      sandboxId,
      record.id,
      () => api.closeTerminal(sandboxId, record.id)
    );
    const content = new Terminal(connection, {
      ...this._options,
      shutdownOnClose: false,
      closeOnExit: true
    });
    const widget = new MainAreaWidget({ content });
    widget.id = `forkd-terminal-${sandboxId}-${record.id}`;
    widget.addClass('jp-forkd-terminal');
    widget.node.dataset.sandboxId = sandboxId;
    widget.node.dataset.terminalId = record.id;
    const name = known?.name ?? sandboxId;
    const label = `Terminal: ${name}`;
    widget.title.label = label;
    widget.title.icon = terminalIcon;
    widget.title.caption = `Terminal ${record.id} in sandbox ${sandboxId}`;
    // The widget names itself after its connection and the program's
    // title escapes; the tab keeps the sandbox's name.
    content.title.changed.connect(() => {
      content.title.label = label;
    });

    const open: IOpenTerminal = {
      sandboxId,
      terminalId: record.id,
      widget,
      seen: !!known
    };
    this._open.add(open);
    widget.disposed.connect(() => {
      this._open.delete(open);
      connection.dispose();
      // Already ended, or the sandbox gone: nothing left to hang up.
      api.closeTerminal(sandboxId, record.id).catch(() => undefined);
    });
    connection.connectionStatusChanged.connect((_, status) => {
      if (status === 'disconnected' && !connection.isDisposed) {
        void this._closeIfEnded(open, connection.everConnected);
      }
    });

    this._app.shell.add(widget, 'main');
    this._app.shell.activateById(widget.id);
    // xterm loads asynchronously, so activation found nothing to focus:
    // once it is ready (and opened, by the update the widget posted first),
    // focus it if its tab is still the active one.
    content.ready
      .then(() => {
        if (this._app.shell.currentWidget === widget) {
          content.activate();
        }
      })
      .catch(() => undefined); // the widget reports its own failure
    return widget;
  }

  /** The socket closed without the program's end: close the tab if the
   * terminal ended or the socket never worked, else say so (the tab stays,
   * its output readable). */
  private async _closeIfEnded(
    open: IOpenTerminal,
    everConnected: boolean
  ): Promise<void> {
    const label = open.widget.title.label;
    if (!everConnected) {
      Notification.error(`${label}: the terminal's connection was refused`, {
        autoClose: 5000
      });
      open.widget.dispose();
      return;
    }
    let ended: boolean;
    try {
      const record = await this._model.api.getTerminal(
        open.sandboxId,
        open.terminalId
      );
      ended = record.state !== 'running' && record.state !== 'starting';
    } catch (reason) {
      ended = reason instanceof ForkdApiError && reason.status === 404;
    }
    if (ended) {
      open.widget.dispose();
    } else if (!open.widget.isDisposed) {
      Notification.warning(
        `${label}: the connection was lost; open a new terminal to go on`,
        { autoClose: false }
      );
    }
  }

  private _closeWhereSandboxStopped(): void {
    // Only a synchronised model tells: while it (re)connects its records
    // may be missing or old.
    if (this._model.state.phase !== 'ready') {
      return;
    }
    for (const open of [...this._open]) {
      const sandbox = this._model.sandboxes.get(open.sandboxId);
      if (sandbox) {
        open.seen = true;
      }
      if (sandbox ? sandbox.status !== 'running' : open.seen) {
        open.widget.dispose();
      }
    }
  }

  /** A sandbox the model knows, by id or by name. */
  private _find(sandbox: string): ISandbox | undefined {
    return (
      this._model.sandboxes.get(sandbox) ??
      [...this._model.sandboxes.values()].find(s => s.name === sandbox)
    );
  }

  dispose(): void {
    this._model.changed.disconnect(this._closeWhereSandboxStopped, this);
  }
}
