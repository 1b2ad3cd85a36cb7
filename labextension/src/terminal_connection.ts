/**
 * The WebSocket of a terminal in a sandbox, as the connection JupyterLab's
 * terminal widget takes (Terminal.ITerminalConnection of
 * @jupyterlab/services; that package does not export its own
 * implementation). The server extension relays it at
 * <wsUrl>forkd/api/v1/sandboxes/<sid>/terminals/websocket/<tid>, in
 * terminado's messages: ["stdin", text] and ["set_size", rows, cols, h, w]
 * from here, ["setup", {}], ["stdout", text] and ["disconnect", 1] (the
 * program ended; the server then closes) to here. The URL carries the token
 * exactly when JupyterLab's own terminals do (settings.appendToken, for a
 * server on another host); otherwise the page's cookies authenticate it.
 *
 * Invariants: `connected` only after "setup", and messages sent before are
 * queued until then; "disconnect" disposes the connection (the widget
 * closes with it, as for a Jupyter terminal); a socket closed without it
 * leaves the connection `disconnected`, not disposed, and is not reopened
 * unless asked (reconnect()): the server replays the terminal's output to
 * every new socket.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection, Terminal } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { API_ROOT } from './api';

type Status = Terminal.ITerminalConnection['connectionStatus'];

export function sandboxTerminalUrl(
  settings: ServerConnection.ISettings,
  sandboxId: string,
  terminalId: string
): string {
  const url = URLExt.join(
    settings.wsUrl,
    API_ROOT,
    'v1/sandboxes',
    encodeURIComponent(sandboxId),
    'terminals/websocket',
    encodeURIComponent(terminalId)
  );
  const token = settings.token;
  return settings.appendToken && token
    ? `${url}?token=${encodeURIComponent(token)}`
    : url;
}

export class SandboxTerminalConnection implements Terminal.ITerminalConnection {
  /** Whether a socket has ever received "setup". */
  everConnected = false;
  private _status: Status = 'connecting';
  private _ws: WebSocket | null = null;
  private _pending: Terminal.IMessage[] = [];
  private _isDisposed = false;
  private readonly _messageReceived = new Signal<this, Terminal.IMessage>(this);
  private readonly _statusChanged = new Signal<this, Status>(this);
  private readonly _disposed = new Signal<this, void>(this);

  constructor(
    readonly serverSettings: ServerConnection.ISettings,
    readonly sandboxId: string,
    readonly name: string,
    /** Hangs the terminal up (shutdown()). */
    private readonly _hangUp: () => Promise<void>
  ) {
    this._open();
  }

  get model(): Terminal.IModel {
    return { name: this.name };
  }

  get messageReceived(): ISignal<this, Terminal.IMessage> {
    return this._messageReceived;
  }

  get connectionStatus(): Status {
    return this._status;
  }

  get connectionStatusChanged(): ISignal<this, Status> {
    return this._statusChanged;
  }

  get disposed(): ISignal<this, void> {
    return this._disposed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  send(message: Terminal.IMessage): void {
    if (this._isDisposed || !message.content) {
      return;
    }
    if (this._status === 'connected' && this._ws) {
      this._ws.send(JSON.stringify([message.type, ...message.content]));
    } else {
      this._pending.push(message);
    }
  }

  /** A new socket; resolves once it is set up. */
  reconnect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (_: this, status: Status) => {
        if (status !== 'connecting') {
          this._statusChanged.disconnect(done);
          status === 'connected'
            ? resolve()
            : reject(new Error('the terminal did not reconnect'));
        }
      };
      this._statusChanged.connect(done);
      this._open();
    });
  }

  async shutdown(): Promise<void> {
    await this._hangUp();
    this.dispose();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._disposed.emit();
    this._setStatus('disconnected');
    this._closeSocket();
    this._pending = [];
    Signal.clearData(this);
  }

  private _open(): void {
    if (this._isDisposed) {
      throw new Error('the terminal connection is disposed');
    }
    this._closeSocket();
    this._setStatus('connecting');
    const settings = this.serverSettings;
    const ws = new settings.WebSocket(
      sandboxTerminalUrl(settings, this.sandboxId, this.name)
    );
    this._ws = ws;
    ws.onmessage = event => this._onMessage(event);
    ws.onclose = () => {
      if (ws === this._ws) {
        this._ws = null;
        this._setStatus('disconnected');
      }
    };
  }

  private _onMessage(event: MessageEvent): void {
    if (this._isDisposed) {
      return;
    }
    const data = JSON.parse(event.data) as [string, ...any[]];
    switch (data[0]) {
      case 'setup':
        this.everConnected = true;
        this._setStatus('connected');
        this._pending.splice(0).forEach(message => this.send(message));
        break;
      case 'disconnect':
        this.dispose();
        break;
      case 'stdout':
        this._messageReceived.emit({ type: 'stdout', content: data.slice(1) });
        break;
    }
  }

  private _setStatus(status: Status): void {
    if (status !== this._status) {
      this._status = status;
      this._statusChanged.emit(status);
    }
  }

  private _closeSocket(): void {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      ws.close();
    }
  }
}
