/**
 * A task's executed notebook (its log) opened as a read-only JupyterLab document.
 *
 * The executed notebooks live in the nbflow home, by default `.nbflow/` in the server's
 * root: a hidden folder Jupyter's contents API refuses to serve, and with a remote home
 * not a file at all. So they come through a drive of their own (`nbflow-log:…`) that
 * asks nbflow's `GET log` for the notebook, and open in a notebook widget factory that
 * never starts a kernel and never saves.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';

export const LOG_DRIVE = 'nbflow-log';
export const LOG_FACTORY = 'nbflow executed notebook';

/**
 * `nbflow-log:FLOW/N/STEP/I/FLOW-N-STEP-I.ipynb` for task `FLOW/N/STEP/I`: the file name
 * (the document's tab) says which task it is; the folder is what the drive asks for.
 */
export function logPath(task: string): string {
  return `${LOG_DRIVE}:${task}/${task.split('/').join('-')}.ipynb`;
}

function taskOf(localPath: string): string {
  const parts = localPath.replace(/^\/+/, '').split('/');
  return parts.slice(0, -1).join('/');
}

function readOnly(what: string): Promise<never> {
  return Promise.reject(new Error(`nbflow: an executed notebook is read-only (${what})`));
}

class LogDrive implements Contents.IDrive {
  readonly name = LOG_DRIVE;
  readonly serverSettings = ServerConnection.makeSettings();

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const task = taskOf(localPath);
    const name = localPath.split('/').pop() ?? localPath;
    const base = {
      name,
      path: localPath,
      writable: false,
      created: '',
      last_modified: '',
      mimetype: 'application/x-ipynb+json',
      size: undefined
    };
    if (options?.content === false) {
      return { ...base, type: 'notebook', format: null, content: null };
    }
    const log = await api.log(task, true);
    if (!log.notebook) {
      throw new Error(log.error || `nbflow: ${task} has no executed notebook`);
    }
    return { ...base, type: 'notebook', format: 'json', content: log.notebook };
  }

  async getDownloadUrl(): Promise<string> {
    return readOnly('no download');
  }

  newUntitled(): Promise<Contents.IModel> {
    return readOnly('new file');
  }

  delete(): Promise<void> {
    return readOnly('delete');
  }

  rename(): Promise<Contents.IModel> {
    return readOnly('rename');
  }

  save(): Promise<Contents.IModel> {
    return readOnly('save');
  }

  copy(): Promise<Contents.IModel> {
    return readOnly('copy');
  }

  async createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return { id: 'nbflow', last_modified: '' };
  }

  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }

  restoreCheckpoint(): Promise<void> {
    return readOnly('restore');
  }

  async deleteCheckpoint(): Promise<void> {
    return;
  }

  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _disposed = false;
}

/** Register the drive and a kernel-less, read-only notebook factory built like Lab's own. */
export function setUpLogs(app: JupyterFrontEnd, notebooks: NotebookWidgetFactory.IFactory): void {
  app.serviceManager.contents.addDrive(new LogDrive());
  const base = notebooks as unknown as NotebookWidgetFactory;
  const factory = new NotebookWidgetFactory({
    name: LOG_FACTORY,
    label: 'Executed notebook (nbflow)',
    fileTypes: ['notebook'],
    modelName: 'notebook',
    preferKernel: false,
    canStartKernel: false,
    readOnly: true,
    rendermime: base.rendermime,
    contentFactory: base.contentFactory,
    mimeTypeService: base.mimeTypeService,
    editorConfig: base.editorConfig,
    notebookConfig: base.notebookConfig
  });
  factory.widgetCreated.connect((_, widget: NotebookPanel) => {
    widget.addClass('nbflow-log-notebook');
    // A record of what ran: no editing (saving is refused by the drive anyway).
    const lock = () => {
      if (widget.content.model) {
        widget.content.model.readOnly = true;
      }
      for (const cell of widget.content.widgets) {
        cell.syncEditable = false; // view state only: writing `editable` would dirty it
        cell.readOnly = true;
      }
    };
    void widget.context.ready.then(() => {
      lock();
      widget.content.model?.cells.changed.connect(lock);
    });
  });
  app.docRegistry.addWidgetFactory(factory);
}

/** Open task `task`'s executed notebook in the main area. */
export async function openTaskLog(app: JupyterFrontEnd, task: string): Promise<void> {
  await app.commands.execute('docmanager:open', { path: logPath(task), factory: LOG_FACTORY });
}
