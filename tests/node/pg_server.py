"""A throwaway PostgreSQL server from Debian's ``postgresql`` package for the sink's tests.

``initdb`` + ``pg_ctl`` into a fresh directory under /tmp, listening on 127.0.0.1 at a free port chosen now
(plus a Unix socket in that directory), trust authentication, no fsync. PostgreSQL refuses to run as root,
and CI runs as root: then the server runs as ``nobody`` (``runuser``) in a directory it owns. ``make test``
installs the package when it is missing; ``find_pg_bin`` returning None is the one reason to skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cli.ports import free_port

START_TIMEOUT_S = 30


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


class PgServer:
    """One running server; ``url`` reaches its ``postgres`` database as the ``postgres`` superuser."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="carecoin-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody", "nogroup" if _has_group("nogroup") else None)
            self.as_user = ["runuser", "-u", "nobody", "--"]
        self.port = free_port()
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                  "-t", str(START_TIMEOUT_S), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=START_TIMEOUT_S + 30,
                              cwd=self.dir)
        if done.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace") if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}\n{log[-2000:]}")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True
