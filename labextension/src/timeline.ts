/**
 * A sandbox's history of checkpoints, from the records the panel holds
 * (the same rule as forkd_jupyter/magics/timeline.py): the sandbox's own
 * checkpoints, then those of the sandbox it was checked out from up to the
 * checkpoint it started at, and so on up its lineage; oldest first.
 */
import { ForkdModel } from './model';
import { ICheckpointMark, ISnapshot } from './types';

export type Checkpoint = ISnapshot & { checkpoint: ICheckpointMark };

export function history(model: ForkdModel, sandboxId: string): Checkpoint[] {
  const out: Checkpoint[] = [];
  const seen = new Set<string>();
  let current = model.sandboxes.get(sandboxId);
  let until = Infinity;
  while (current && !seen.has(current.id)) {
    seen.add(current.id);
    const id = current.id;
    for (const snap of model.snapshots.values()) {
      if (
        snap.source_id === id &&
        snap.checkpoint &&
        snap.status === 'ready' &&
        snap.created_at <= until
      ) {
        out.push(snap as Checkpoint);
      }
    }
    const origin = current.parent_snapshot
      ? model.snapshots.get(current.parent_snapshot)
      : undefined;
    if (!origin || !origin.source_id) {
      break;
    }
    until = origin.created_at;
    current = model.sandboxes.get(origin.source_id);
  }
  return out.sort((a, b) => a.created_at - b.created_at);
}

/** "before [N]", or "after [K]" for the state a checkout left behind. */
export function stateOf(mark: ICheckpointMark): string {
  return mark.cell === null ? `after [${mark.after}]` : `before [${mark.cell}]`;
}

/** The checkpoint whose state the sandbox still has: the last one of its
 * history when the sandbox was checked out from it and has none since. */
export function sittingAt(
  model: ForkdModel,
  sandboxId: string,
  past: Checkpoint[]
): string | null {
  const last = past[past.length - 1];
  const sandbox = model.sandboxes.get(sandboxId);
  return last && sandbox?.parent_snapshot === last.id ? last.id : null;
}
