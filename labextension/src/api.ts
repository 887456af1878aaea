/**
 * Typed calls to the nbflow server extension (`{base_url}nbflow/api/`, see LAB_API.md).
 * Nothing else in the extension touches the network.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The catalog's task statuses (nbflow/store/schema.py) plus `not-run`. */
export type StepStatus =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cached'
  | 'cloned'
  | 'cancelled'
  | 'not-run';

export interface ICellSource {
  cell_type: string;
  source: string;
  metadata: Record<string, unknown>;
  id: string;
}

export interface IStep {
  name: string;
  kind: 'step' | 'branch';
  index: number;
  cell: number;
  cell_id: string | null;
  upstream: string[];
  inputs: string[];
  outputs: string[];
  foreach: string | null;
  fresh: boolean | null;
  reason: string | null;
  notes: string[];
}

export interface IProblem {
  message: string;
  hint?: string | null;
  cell: number | null;
  index: number | null;
  step: string | null;
}

export interface IParameter {
  name: string;
  default: unknown;
  type: string | null;
  required: boolean;
  source: string;
}

export interface IAnalysis {
  flow: string;
  steps: IStep[];
  edges: [string, string][];
  errors: IProblem[];
  warnings: IProblem[];
  parameters: IParameter[];
}

export interface IRunInfo {
  id: string;
  status: string;
  started: string | null;
  ended: string | null;
  duration: number | null;
}

export interface IStepStatus {
  status: StepStatus;
  duration: number | null;
  tasks: number;
  done: number;
  cached_from: string | null;
  error: string | null;
  traceback: string | null;
  task: string | null;
  log_path: string | null;
}

export interface IStatus {
  flow: string;
  run: IRunInfo | null;
  steps: Record<string, IStepStatus>;
}

export interface IHistoryRun extends IRunInfo {
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

/** A run this server started for the notebook (`active` in `GET runs`). */
export interface IActiveRun {
  handle: string;
  path: string;
  run: string | null;
  started: number;
  done: boolean;
  returncode: number | null;
  cancelled: boolean;
  from: string | null;
}

export interface IHistory {
  runs: IHistoryRun[];
  active: IActiveRun[];
}

export interface IRunEvent {
  seq: number;
  kind: string;
  step?: string | null;
  task?: string | null;
  status?: string | null;
  run?: string | null;
  [key: string]: unknown;
}

export interface IEvents {
  events: IRunEvent[];
  next: number;
  done: boolean;
  returncode: number | null;
  run: string | null;
}

export interface IStarted {
  handle: string;
  run: string | null;
}

export interface ILog {
  text: string;
  error: string | null;
  notebook_path: string | null;
  /** The executed notebook itself (nbformat JSON), when asked for. */
  notebook?: Record<string, unknown> | null;
}

/** An error the server worded: what happened and what to do. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly hint: string | null,
    readonly status: number
  ) {
    super(message);
  }
}

async function call<T>(
  endpoint: string,
  init: RequestInit = {},
  query: Record<string, string | number | null | undefined> = {}
): Promise<T> {
  const { response, text } = await send(endpoint, init, query);
  return parse<T>(response, text);
}

async function send(
  endpoint: string,
  init: RequestInit,
  query: Record<string, string | number | null | undefined>
): Promise<{ response: Response; text: string }> {
  const settings = ServerConnection.makeSettings();
  const params = Object.entries(query)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  let url = URLExt.join(settings.baseUrl, 'nbflow', 'api', endpoint);
  if (params) {
    url += `?${params}`;
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new ApiError(`the Jupyter server did not answer: ${reason}`, null, 0);
  }
  return { response, text: await response.text() };
}

/** The reply's JSON, or the error the server worded. */
function parse<T>(response: Response, text: string): T {
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const message =
      response.status === 404 && !data.message
        ? 'the nbflow server extension is not enabled'
        : data.message || response.statusText;
    throw new ApiError(message, data.hint ?? null, response.status);
  }
  return data as T;
}

function post<T>(endpoint: string, body: unknown): Promise<T> {
  return call<T>(endpoint, { method: 'POST', body: JSON.stringify(body) });
}

/**
 * `cells`: each cell's JSON text (`ICellSource`), as the model keeps it between calls.
 * `known`: the text of the last reply; a reply that is the same text is not parsed
 * (`analysis` null): typing in a long notebook mostly changes nothing the analysis says.
 */
export async function analyze(
  path: string,
  cells: string[],
  metadata: Record<string, unknown>,
  known: string | null = null
): Promise<{ text: string; analysis: IAnalysis | null }> {
  const body = `{"path":${JSON.stringify(path)},"cells":[${cells.join(',')}],` +
    `"metadata":${JSON.stringify(metadata)}}`;
  const { response, text } = await send('analyze', { method: 'POST', body }, {});
  if (response.ok && known !== null && text === known) {
    return { text, analysis: null };
  }
  return { text, analysis: parse<IAnalysis>(response, text) };
}

export function status(path: string, run?: string | null): Promise<IStatus> {
  return call<IStatus>('status', {}, { path, run });
}

export function history(path: string): Promise<IHistory> {
  return call<IHistory>('runs', {}, { path });
}

export function startRun(
  path: string,
  params: Record<string, string>,
  resume: string | null = null,
  from: string | null = null
): Promise<IStarted> {
  return post<IStarted>('runs', { path, params, resume, from });
}

export function events(handle: string, since: number): Promise<IEvents> {
  return call<IEvents>(`runs/${encodeURIComponent(handle)}/events`, {}, { since });
}

export function cancel(handle: string): Promise<{ ok: boolean }> {
  return post<{ ok: boolean }>(`runs/${encodeURIComponent(handle)}/cancel`, {});
}

export function log(task: string, notebook = false): Promise<ILog> {
  return call<ILog>('log', {}, { task, notebook: notebook ? 1 : null });
}
