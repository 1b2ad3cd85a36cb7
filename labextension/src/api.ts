/**
 * Calls to the server extension (/forkd/api/...), which answers for itself
 * (handshake, current) or proxies to the user's daemon (/forkd/api/v1/...).
 * Requests go through Jupyter's ServerConnection, so they carry the
 * page's authentication and XSRF token.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  BranchMode,
  IHandshake,
  IProblem,
  ISandbox,
  ISnapshot,
  ITerminalRecord,
  ITree
} from './types';

export const API_ROOT = 'forkd/api';

/** A refused request, with the problem document the server sent. */
export class ForkdApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: IProblem
  ) {
    super(
      problem.detail
        ? `${problem.title ?? 'Error'}: ${problem.detail}`
        : (problem.title ?? `HTTP ${status}`)
    );
  }
}

export interface ISpawnOptions {
  snapshotId?: string;
  name?: string;
  memoryMiB?: number;
}

export interface IBranchOptions {
  mode: BranchMode;
  count: number;
  tag?: string;
}

export class ForkdApi {
  readonly settings: ServerConnection.ISettings;

  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  url(path: string): string {
    return URLExt.join(this.settings.baseUrl, API_ROOT, path);
  }

  /** The raw response of GET/POST/...; used for streams. */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return ServerConnection.makeRequest(this.url(path), init, this.settings);
  }

  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    let response: Response;
    try {
      response = await this.fetch(path, init);
    } catch (reason) {
      throw new ForkdApiError(0, {
        title: 'Jupyter server unreachable',
        detail: String(reason)
      });
    }
    const text = await response.text();
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const problem: IProblem =
        body && typeof body === 'object'
          ? body
          : { title: `HTTP ${response.status}`, detail: text.slice(0, 200) };
      if (!problem.title && typeof body?.message === 'string') {
        problem.title = body.message;
      }
      throw new ForkdApiError(response.status, problem);
    }
    return body as T;
  }

  private _json<T>(method: string, path: string, body: unknown): Promise<T> {
    return this.request<T>(path, {
      method,
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' }
    });
  }

  /** `start`: start the daemon if nothing answers (the first connection,
   * or the user asked); otherwise a stopped daemon is only reported. */
  handshake(start: boolean): Promise<IHandshake> {
    return this.request<IHandshake>(start ? 'handshake' : 'handshake?start=0');
  }

  tree(): Promise<ITree> {
    return this.request<ITree>('v1/tree');
  }

  async spawn(options: ISpawnOptions = {}): Promise<ISandbox[]> {
    const body: Record<string, unknown> = options.snapshotId
      ? { n: 1, snapshot_id: options.snapshotId }
      : { n: 1, live_fork: true };
    if (options.name) {
      body.name = options.name;
    }
    if (options.memoryMiB) {
      body.memory_limit_mib = options.memoryMiB;
    }
    const reply = await this._json<{ sandboxes: ISandbox[] }>(
      'POST',
      'v1/sandboxes',
      body
    );
    return reply.sandboxes;
  }

  branch(
    sandboxId: string,
    options: IBranchOptions
  ): Promise<{ snapshot: ISnapshot; children: ISandbox[] }> {
    return this._json(
      'POST',
      `v1/sandboxes/${encodeURIComponent(sandboxId)}/branch`,
      {
        mode: options.mode,
        count: options.count,
        tag: options.tag || null,
        wait: true
      }
    );
  }

  kill(sandboxId: string): Promise<ISandbox> {
    return this.request<ISandbox>(
      `v1/sandboxes/${encodeURIComponent(sandboxId)}`,
      { method: 'DELETE' }
    );
  }

  async deleteSnapshot(
    snapshotId: string,
    cascade: boolean
  ): Promise<string[]> {
    const query = cascade ? '?cascade=true' : '';
    const reply = await this.request<{ deleted: string[] }>(
      `v1/snapshots/${encodeURIComponent(snapshotId)}${query}`,
      { method: 'DELETE' }
    );
    return reply.deleted;
  }

  saveSnapshot(snapshotId: string): Promise<ISnapshot> {
    return this._json<ISnapshot>(
      'POST',
      `v1/snapshots/${encodeURIComponent(snapshotId)}/save`,
      {}
    );
  }

  /** Starts the sandbox's shell on a new pseudo-terminal of that size. */
  openTerminal(
    sandboxId: string,
    size: { cols: number; rows: number }
  ): Promise<ITerminalRecord> {
    return this._json<ITerminalRecord>(
      'POST',
      `v1/sandboxes/${encodeURIComponent(sandboxId)}/terminals`,
      size
    );
  }

  getTerminal(sandboxId: string, terminalId: string): Promise<ITerminalRecord> {
    return this.request<ITerminalRecord>(terminalPath(sandboxId, terminalId));
  }

  /** Hangs the terminal up (its program gets SIGHUP, then SIGKILL). */
  async closeTerminal(sandboxId: string, terminalId: string): Promise<void> {
    await this.request<null>(terminalPath(sandboxId, terminalId), {
      method: 'DELETE'
    });
  }

  async currentSandbox(kernelId: string): Promise<string | null> {
    const reply = await this.request<{ sandbox_id: string | null }>(
      `current?kernel_id=${encodeURIComponent(kernelId)}`
    );
    return reply.sandbox_id;
  }
}

function terminalPath(sandboxId: string, terminalId: string): string {
  return (
    `v1/sandboxes/${encodeURIComponent(sandboxId)}` +
    `/terminals/${encodeURIComponent(terminalId)}`
  );
}
