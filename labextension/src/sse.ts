/**
 * An incremental parser of a text/event-stream body: feed it decoded text
 * as it arrives, in chunks of any size; it returns the complete events.
 */
export interface IServerEvent {
  event: string;
  data: string;
}

export class EventStreamParser {
  /** Text after the last complete line; always without a line break. */
  private _pending = '';
  private _event = 'message';
  private _data: string[] = [];

  feed(text: string): IServerEvent[] {
    const events: IServerEvent[] = [];
    const lines = (this._pending + text).split(/\r\n|\r|\n/);
    this._pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (this._data.length > 0) {
          events.push({ event: this._event, data: this._data.join('\n') });
        }
        this._event = 'message';
        this._data = [];
        continue;
      }
      if (line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (field === 'event') {
        this._event = value;
      } else if (field === 'data') {
        this._data.push(value);
      }
    }
    return events;
  }
}
