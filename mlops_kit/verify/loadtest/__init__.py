"""Load tests: drive an endpoint with a bounded load, measure it, judge it against SLOs.

The generator is locust, run in a child process (:mod:`.child` starts it, :mod:`.generator` is
what runs inside): importing locust monkeypatches the whole process through gevent, which hangs a
Jupyter kernel. Every run is bounded by the project's ``load_test.limits``
(:class:`~mlops_kit.settings_loadtest.LoadLimits`) and judged against ``load_test.slo``
(:class:`~mlops_kit.settings_loadtest.Slo`); only loopback hosts are loaded unless
``allow_remote=True``.

Latency percentiles are exact (every sample is kept) and taken over successful (2xx) answers;
errors are counted by HTTP status, or by exception name when no answer came. The errors raised
(``EndpointUnavailable``, ``RemoteLoadRefused``, ``LoadTestError``, ``SloFailed``) live in
:mod:`mlops_kit.errors`.
"""

from mlops_kit.settings_loadtest import LoadLimits, Slo
from mlops_kit.verify.loadtest.evidence import record
from mlops_kit.verify.loadtest.results import LoadTestResult, LoadTestRun
from mlops_kit.verify.loadtest.run import load_test, request_body, run_load
from mlops_kit.verify.loadtest.spec import LoadSpec, check_host, slo_from
from mlops_kit.verify.loadtest.verdict import SloCheck, SloVerdict, enforce, evaluate

__all__ = [
    "LoadLimits",
    "LoadSpec",
    "LoadTestResult",
    "LoadTestRun",
    "Slo",
    "SloCheck",
    "SloVerdict",
    "check_host",
    "enforce",
    "evaluate",
    "load_test",
    "record",
    "request_body",
    "run_load",
    "slo_from",
]
