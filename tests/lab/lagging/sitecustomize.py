"""For tests/lab/test_panel_lag.py: the runs its lab starts write the catalog late.

``nbflow execute`` batches its catalog writes (``nbflow.run.recorder``: after an event, it
waits ``linger`` seconds for more). On a busy machine a batch lands a second or more
after the events the panel streams; here every batch waits NBFLOW_TEST_CATALOG_LAG
seconds, so the panel always sees the catalog behind the event stream.
"""

import os

_LAG = os.environ.get("NBFLOW_TEST_CATALOG_LAG")
if _LAG:
    import nbflow.run.recorder as _recorder

    _init = _recorder.Recorder.__init__

    def _lagging(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _init(self, *args, **kwargs)
        self.linger = float(_LAG)

    _recorder.Recorder.__init__ = _lagging
