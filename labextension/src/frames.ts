/**
 * Work the views do a slice at a time: at most BUDGET_MS of it in one animation frame, the
 * rest in the next frames. A change in a long notebook can touch hundreds of badges and
 * DAG nodes at once; done in one go it holds back the frame, and the keystroke typed
 * meanwhile. Each owner has one piece of work pending; scheduling it again replaces it.
 */

/** nbflow's share of a frame (a frame is 16 ms; the editor needs the rest). */
const BUDGET_MS = 4;

/** Do some of the work, while `performance.now()` is before `deadline`; true when done. */
export type Slice = (deadline: number) => boolean;

const pending = new Map<object, Slice>();
let frame: number | null = null;

export function sliced(owner: object, work: Slice): void {
  pending.set(owner, work);
  if (frame === null) {
    frame = window.requestAnimationFrame(run);
  }
}

export function cancelSliced(owner: object): void {
  pending.delete(owner);
}

function run(): void {
  frame = null;
  const deadline = performance.now() + BUDGET_MS;
  for (const [owner, work] of [...pending]) {
    if (performance.now() >= deadline) {
      break;
    }
    pending.delete(owner);
    let done = true;
    try {
      done = work(deadline);
    } catch (reason) {
      console.error('nbflow: a view could not be updated', reason);
    }
    if (!done && !pending.has(owner)) {
      pending.set(owner, work); // after the others: each owner gets its turn
    }
  }
  if (pending.size > 0) {
    frame = window.requestAnimationFrame(run);
  }
}
