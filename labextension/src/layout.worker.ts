/**
 * The DAG's layout off the page's main thread: one request in, its layout out as JSON
 * text (the page reads a string of a 200-step layout in a fraction of the time it takes
 * to receive the same thing as objects).
 */
import { ILayoutRequest, computeLayout } from './layout';

interface IWorkerScope {
  onmessage: ((event: MessageEvent<{ id: number; request: ILayoutRequest }>) => void) | null;
  postMessage(message: unknown): void;
}

const scope = self as unknown as IWorkerScope;
scope.onmessage = event => {
  const { id, request } = event.data;
  try {
    scope.postMessage({ id, layout: JSON.stringify(computeLayout(request)) });
  } catch (reason) {
    scope.postMessage({ id, error: String(reason) });
  }
};
