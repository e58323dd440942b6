"""The local target: one real MLServer process per (environment, model), on loopback.

Everything lives under ``<state_dir>/serving/<environment>/<model>/``::

    settings.json                   MLServer server settings (ports, no parallel workers)
    <model>/model-settings.json     the model: runtime, artifact path, version, batching
    server.log                      the server's stdout and stderr, appended across restarts
    server.json                     what runs: pid, process group, ports, version, start time

Our runtime micro-batches concurrent requests itself, as ``ServingSettings.max_batch_size`` and
``max_batch_time`` say (in ``parameters.extra``); MLServer's own adaptive batching stays off, as
it fails a whole batch for one bad request.

A new version of a live server is swapped in place through MLServer's repository API
(``POST /v2/repository/models/<name>/load``), which keeps answering throughout: the old
version finishes the requests it holds before it goes. A server that died is started again,
on its recorded ports when they are free.

The ``custom`` flavour runs the user's class (``custom_class``, ``module:Class``) behind
seldon-core's microservice wrapper instead, with the interpreter of its own environment (see
:mod:`mlops_kit.serving.seldon`); it speaks the Seldon protocol at ``/api/v1.0/predictions``.
Its process serves one version, so a new version starts a second process on new ports, and
the record switches to it once it answers before the old one stops. The newcomer is recorded
in ``server.next.json`` meanwhile, so nothing it starts is ever unrecorded.

Modules: :mod:`.target` (:class:`LocalTarget`), :mod:`.mlserver` (settings files, model
rendering, launching MLServer), :mod:`.custom` (the seldon wrapper), :mod:`.records` (server
records, URLs, :func:`stop_all`); processes, ports, locks and files go through
:mod:`mlops_kit.process`.
"""

from mlops_kit.targets.local.mlserver import SKLEARN_RUNTIME
from mlops_kit.targets.local.records import (
    LOG_FILE,
    MODEL_SETTINGS_FILE,
    NEXT_SERVER_FILE,
    SERVER_FILE,
    SETTINGS_FILE,
    STOP_GRACE,
    ServerRecord,
    stop_all,
)
from mlops_kit.targets.local.target import LocalTarget

__all__ = [
    "LOG_FILE",
    "MODEL_SETTINGS_FILE",
    "NEXT_SERVER_FILE",
    "SERVER_FILE",
    "SETTINGS_FILE",
    "SKLEARN_RUNTIME",
    "STOP_GRACE",
    "LocalTarget",
    "ServerRecord",
    "stop_all",
]
