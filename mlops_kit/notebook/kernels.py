"""The kernels the runner starts: their transport encrypted, so they have nothing to warn about.

A kernel on TCP without CurveZMQ keys logs "Kernel is running over TCP without encryption" on
start (ipykernel ≥ 7): once per notebook in every ``mlops-kit run``. jupyter_client ≥ 8.10 can
provision the keys itself; :class:`EncryptedKernelManager` asks it to whenever the kernelspec
declares ``curve`` support (ipykernel's does) and libzmq has CurveZMQ. Then the warning is
simply true no more: nothing is filtered or hidden. A kernelspec without curve support starts
as before, unencrypted, and says so.

Imported by the runner only when it executes notebooks: jupyter_client stays out of imports of
the toolkit that never start a kernel.
"""

from __future__ import annotations

import zmq
from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class EncryptedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` (what nbclient uses) that provisions CurveZMQ keys when it can."""

    @default("transport_encryption")
    def _transport_encryption_default(self) -> str:
        return "auto" if zmq.has("curve") else "disabled"
