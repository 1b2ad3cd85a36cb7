/** The daemon's records and events (docs/rest-api.md), as the panel uses them. */

export type BranchMode = 'full' | 'diff' | 'live';

export interface ISandbox {
  id: string;
  name: string;
  status: 'running' | 'dead';
  busy: boolean;
  live_fork: boolean;
  memory_limit_mib: number | null;
  parent_snapshot: string | null;
  created_at: number;
  exit_reason: string | null;
  execution_count: number;
  /** The cluster node it runs on (host/node id); null: the daemon's host. */
  node?: string | null;
}

export interface ISnapshot {
  id: string;
  tag: string | null;
  mode: BranchMode;
  status: 'writing' | 'ready' | 'failed';
  source_id: string | null;
  parent: string | null;
  children: string[];
  pause_ms: number | null;
  round_trip_ms: number | null;
  copy_ms: number | null;
  ready_ms: number | null;
  logical_bytes: number | null;
  physical_bytes: number | null;
  diff_bytes: number | null;
  created_at: number;
  saved_path: string | null;
  error: string | null;
  /** A notebook's checkpoint (attach mode, docs/time-travel.md). */
  checkpoint?: ICheckpointMark | null;
}

/** Taken just before cell `cell` ran (null: the state a checkout left
 * behind); holds the state after cell `after`. */
export interface ICheckpointMark {
  cell: number | null;
  line: string;
  after: number | null;
}

export type TreeNode =
  | ({ kind: 'sandbox'; label: string } & ISandbox)
  | ({ kind: 'snapshot'; label: string } & ISnapshot);

export interface ITree {
  nodes: TreeNode[];
  edges: { source: string; target: string; kind: string }[];
  seq: number;
}

export interface ISandboxEvent {
  seq: number;
  time: number;
  action: 'created' | 'updated' | 'dead' | 'removed';
  sandbox: ISandbox;
}

export interface ISnapshotEvent {
  seq: number;
  time: number;
  action: 'created' | 'updated' | 'deleted';
  snapshot: ISnapshot;
}

export interface IHandshake {
  extension_version: string;
  daemon: { version: string; api: number } | null;
  daemon_error: string | null;
  /** Nothing answers and the handshake was asked not to start it. */
  daemon_stopped?: boolean;
  daemon_url: string | null;
}

/** A terminal in a sandbox: a program on a pseudo-terminal (docs/processes.md). */
export interface ITerminalRecord {
  id: string;
  tty: boolean;
  state: 'starting' | 'running' | 'exited' | 'failed' | 'lost';
  cols: number;
  rows: number;
}

/** An application/problem+json document (RFC 9457). */
export interface IProblem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  dependents?: string[];
  [key: string]: unknown;
}
