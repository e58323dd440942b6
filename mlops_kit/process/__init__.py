"""The process layer: the servers the toolkit runs, from spawn to stop, and their files.

One place for what every server needs (MLServer, the seldon wrapper, ``mlflow server``):

- :func:`spawn` a command in its own session and process group, output appended to a log;
- a JSON record of what runs (:func:`read_record`/:func:`write_record` for any dataclass,
  or :class:`ProcessRecord`), written atomically and read back tolerantly;
- :func:`wait_ready` for a URL or a callable, noticing an early exit and quoting the log;
- :func:`pid_alive`, :func:`group_alive`, :func:`group_members`, and :func:`stop_groups`
  (SIGTERM, wait, SIGKILL, reap; idempotent);
- :func:`free_ports`, :func:`port_free`; :func:`locked` (an flock, optional timeout);
  :func:`write_text`/:func:`write_json` (atomic); :func:`log_tail`;
- :func:`wait_until`, the one deadline-polling loop.

Failures raise the errors of :mod:`mlops_kit.errors` (:class:`~mlops_kit.errors.ProcessExited`,
:class:`~mlops_kit.errors.WaitTimeout`, :class:`~mlops_kit.errors.LockTimeout`,
:class:`~mlops_kit.errors.StopFailed`, all :class:`~mlops_kit.errors.ProcessError`); callers
that owe their own error type catch them and raise theirs. POSIX only (``fcntl``, sessions);
no MLflow or MLServer imports.
"""

from mlops_kit.process.files import (
    locked,
    log_size,
    log_tail,
    secret_file,
    write_json,
    write_text,
)
from mlops_kit.process.groups import (
    command_line,
    find_group_leaders,
    group_alive,
    group_members,
    pid_alive,
    send_signal,
    stop_group,
    stop_groups,
)
from mlops_kit.process.ports import free_ports, port_free, port_holder
from mlops_kit.process.ready import http_ok, wait_ready
from mlops_kit.process.records import ProcessRecord, now, read_record, write_record
from mlops_kit.process.spawn import child, exit_code, forget, reap, spawn
from mlops_kit.process.wait import wait_until

__all__ = [
    "ProcessRecord",
    "child",
    "command_line",
    "exit_code",
    "find_group_leaders",
    "forget",
    "free_ports",
    "group_alive",
    "group_members",
    "http_ok",
    "locked",
    "log_size",
    "log_tail",
    "now",
    "pid_alive",
    "port_free",
    "port_holder",
    "read_record",
    "reap",
    "send_signal",
    "spawn",
    "stop_group",
    "stop_groups",
    "wait_ready",
    "wait_until",
    "write_json",
    "write_record",
    "secret_file",
    "write_text",
]
