"""Starts seldon-core's microservice bound to loopback, tagging answers with the model version.

Run by the seldon environment's interpreter, as
``python seldon_bootstrap.py <folder> <host> <version> <seldon-core-microservice args>``
(see :data:`mlops_kit.serving.seldon.BOOTSTRAP`). ``folder`` is unused here: it is in the
command line so that the toolkit can tell the process is the server it started for that folder.

That environment has seldon-core but not the toolkit: this file imports nothing of
``mlops_kit`` (nor anything else outside the standard library and seldon-core).
"""

from __future__ import annotations

import os
import sys
from typing import Any

VERSION_TAG = "model_version"
"""The ``meta.tags`` entry added to every answer (``mlops_kit.serving.seldon.VERSION_TAG``)."""


def main() -> None:
    """Patch the wrapper's bind addresses and answer tags, then run its ``main``."""
    # Run by path, Python put this file's directory first on sys.path, where the toolkit's
    # serving modules would shadow user modules of the same name: put the working directory
    # (the user's code) there instead, as ``python -c`` does.
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path and os.path.realpath(sys.path[0] or ".") == here:
        sys.path[0] = ""
    host, version = sys.argv[2:4]
    del sys.argv[1:4]
    sys.argv[0] = "seldon-core-microservice"
    from seldon_core import gunicorn_utils, utils

    load_config = gunicorn_utils.StandaloneApplication.load_config
    bind_host = f"[{host}]" if ":" in host else host
    wildcard = "0.0.0.0:"  # noqa: S104 - the address the wrapper hard-codes, replaced below

    def loopback_config(self: Any) -> None:
        # The wrapper hard-codes 0.0.0.0 for its REST and metrics servers; bind loopback instead.
        load_config(self)
        binds = [b.replace(wildcard, bind_host + ":", 1) for b in self.cfg.bind]
        self.cfg.set("bind", binds)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn >= 25 opens a control socket under $HOME: nothing may be written outside
            # the state directory, and the REST and metrics servers would share one path.
            self.cfg.set("control_socket_disable", True)

    gunicorn_utils.StandaloneApplication.load_config = loopback_config
    custom_tags = utils.client_custom_tags

    def tagged(user_model: Any) -> dict[str, Any]:
        # Every answer says which registered version produced it, whatever the user's class tags.
        return {**(custom_tags(user_model) or {}), VERSION_TAG: version}

    utils.client_custom_tags = tagged
    from seldon_core.microservice import main as microservice

    microservice()


if __name__ == "__main__":
    main()
