/**
 * nbflow in JupyterLab: the DAG panel, cell badges, toolbar button and commands.
 * One FlowModel per open notebook; the panel shows the active notebook's model.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, ToolbarButton, showDialog } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  INotebookWidgetFactory,
  NotebookPanel,
  NotebookWidgetFactory
} from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { CellBadges } from './badges';
import { openTaskLog, setUpLogs } from './logs';
import { el } from './format';
import { FlowModel, describe } from './model';
import { FlowPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
<g class="jp-icon3" fill="#616161"><circle cx="6" cy="5" r="2.6"/><circle cx="18" cy="5" r="2.6"/>
<circle cx="12" cy="19" r="2.6"/></g>
<g class="jp-icon3" stroke="#616161" stroke-width="1.6" fill="none">
<path d="M6 7.5 C6 13 12 12 12 16.4"/><path d="M18 7.5 C18 13 12 12 12 16.4"/></g></svg>`;

const CommandIDs = {
  run: 'nbflow:run',
  cancel: 'nbflow:cancel',
  openPanel: 'nbflow:open-panel'
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:plugin',
  description: 'The notebook as an nbflow workflow: DAG panel, cell badges, run and cancel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ILabShell, INotebookWidgetFactory],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null,
    notebookFactory: NotebookWidgetFactory.IFactory | null
  ) => {
    const icon = new LabIcon({ name: 'nbflow:dag', svgstr: ICON_SVG });
    const models = new WeakMap<NotebookPanel, FlowModel>();
    const logsOpen = notebookFactory !== null;
    if (notebookFactory) {
      setUpLogs(app, notebookFactory);
    }

    const actions = {
      goToCell: (model: FlowModel, index: number, cellId: string | null) =>
        void goToCell(app, model.panel, index, cellId),
      run: (model: FlowModel, fromStep: string | null) => void model.run(fromStep),
      openLog: (path: string | null, task: string | null) =>
        void openLog(app, logsOpen ? task : null, path, task)
    };
    const panel = new FlowPanel(actions);
    panel.title.icon = icon;
    app.shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, 'nbflow-panel');
    const showPanel = () => app.shell.activateById(panel.id);

    // A notebook's model, badges and toolbar button, made the first time it is seen
    // (the tracker may announce it as current before it announces it as added).
    const ensure = (notebook: NotebookPanel | null): FlowModel | null => {
      if (!notebook || notebook.isDisposed) {
        return null;
      }
      let model = models.get(notebook);
      if (model) {
        return model;
      }
      model = new FlowModel(notebook);
      models.set(notebook, model);
      new CellBadges(notebook, model, {
        runFrom: (m, step) => void m.run(step),
        showPanel
      });
      const button = new ToolbarButton({
        icon,
        label: 'Run',
        tooltip: 'nbflow: save and run the notebook headless',
        className: 'nbflow-toolbar-run',
        onClick: () => void app.commands.execute(CommandIDs.run)
      });
      notebook.toolbar.insertItem(10, 'nbflow-run', button);
      const made = model;
      notebook.disposed.connect(() => {
        made.dispose();
        if (panel.model === made) {
          panel.setModel(null);
        }
      });
      return model;
    };
    tracker.widgetAdded.connect((_, notebook) => void ensure(notebook));
    const follow = () => panel.setModel(ensure(tracker.currentWidget));
    tracker.currentChanged.connect(follow);
    follow();

    // The notebook in the main area if there is one, else the last one focused.
    const current = (): FlowModel | null => {
      const shown = app.shell.currentWidget;
      return ensure(shown instanceof NotebookPanel ? shown : tracker.currentWidget);
    };
    app.commands.addCommand(CommandIDs.run, {
      label: 'nbflow: Run notebook',
      caption: 'Save the notebook and run it headless with nbflow execute',
      icon,
      isEnabled: () => current() !== null,
      execute: async args => {
        const model = current();
        if (!model) {
          return;
        }
        showPanel();
        await model.run((args.from as string | undefined) ?? null);
      }
    });
    app.commands.addCommand(CommandIDs.cancel, {
      label: 'nbflow: Cancel run',
      caption: 'Cancel the newest nbflow run started from this notebook',
      isEnabled: () => (current()?.activeRuns.length ?? 0) > 0,
      execute: async args => {
        await current()?.cancel((args.handle as string | undefined) ?? undefined);
      }
    });
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'nbflow: Show workflow panel',
      caption: "Show the active notebook's DAG, runs and history",
      icon,
      execute: () => showPanel()
    });
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'nbflow' });
    }
    void labShell;
  }
};

async function goToCell(
  app: JupyterFrontEnd,
  panel: NotebookPanel,
  index: number,
  cellId: string | null
): Promise<void> {
  const notebook = panel.content;
  let target = index;
  if (cellId) {
    const found = notebook.widgets.findIndex(c => c.model.id === cellId);
    if (found >= 0) {
      target = found;
    }
  }
  if (target < 0 || target >= notebook.widgets.length) {
    return;
  }
  app.shell.activateById(panel.id);
  notebook.activeCellIndex = target;
  notebook.deselectAll();
  await notebook.scrollToItem(target, 'center');
  notebook.activeCell?.node.focus();
}

/**
 * A task's executed notebook as a read-only document (through nbflow's drive: the home is
 * usually a hidden folder the contents API will not serve); else the file, else its text.
 */
async function openLog(
  app: JupyterFrontEnd,
  viaDrive: string | null,
  path: string | null,
  task: string | null
) {
  if (viaDrive) {
    await openTaskLog(app, viaDrive);
    return;
  }
  if (path) {
    await app.commands.execute('docmanager:open', { path });
    return;
  }
  if (!task) {
    return;
  }
  let body: Widget;
  try {
    const log = await api.log(task);
    if (log.notebook_path) {
      await app.commands.execute('docmanager:open', { path: log.notebook_path });
      return;
    }
    body = new Widget({ node: el('pre', { class: 'nbflow-log' }, log.text || log.error || '') });
  } catch (reason) {
    body = new Widget({ node: el('p', {}, describe(reason)) });
  }
  await showDialog({ title: `nbflow: ${task}`, body, buttons: [Dialog.okButton()] });
}

export default plugin;
