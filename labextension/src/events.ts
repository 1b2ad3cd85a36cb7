/**
 * The daemon's event stream (/forkd/api/v1/events, proxied by the server
 * extension), read with fetch streaming so it carries the same
 * authentication as every other request.
 */
import { ForkdApi } from './api';
import { EventStreamParser } from './sse';

export type EventHandler = (name: string, data: any) => void;

export class DaemonEventStream {
  private _abort: AbortController | null = null;

  constructor(private readonly _api: ForkdApi) {}

  /**
   * Reads events later than `since` until the stream ends (the daemon or
   * the server went away) or close() is called; rejects on a refused
   * request or a broken connection.
   */
  async read(since: number, onEvent: EventHandler): Promise<void> {
    this.close();
    const abort = new AbortController();
    this._abort = abort;
    const response = await this._api.fetch(`v1/events?since=${since}`, {
      headers: { Accept: 'text/event-stream' },
      signal: abort.signal
    });
    if (!response.ok || !response.body) {
      throw new Error(`the event stream was refused (HTTP ${response.status})`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new EventStreamParser();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || abort.signal.aborted) {
          return;
        }
        for (const event of parser.feed(
          decoder.decode(value, { stream: true })
        )) {
          let data: any;
          try {
            data = JSON.parse(event.data);
          } catch {
            continue;
          }
          onEvent(event.event, data);
        }
      }
    } catch (reason) {
      if (abort.signal.aborted) {
        return;
      }
      throw reason;
    }
  }

  close(): void {
    this._abort?.abort();
    this._abort = null;
  }
}
