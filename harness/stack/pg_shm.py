"""Shared memory that a killed PostgreSQL server leaves behind, and removing it.

A postmaster that shuts down (fast or immediate) removes its own segments. One that is SIGKILLed, as
a crashed primary is, cannot, and the kernel keeps them after every server process is gone:
- a small System V segment (PostgreSQL's "shim"; its key is the data directory's inode), whose key
  and id the server wrote on line 7 of postmaster.pid;
- the dynamic shared memory segments in /dev/shm (`PostgreSQL.<handle>`): a control segment, whose
  handle the shim holds, and the segments that the control segment lists.
PostgreSQL removes them itself when it is started again on the same data directory. A drill's crashed
primary is never started again and its directory is deleted at teardown, so teardown does what that
restart would have done.

Only what is proven to be one data directory's own is touched: the shim must carry PostgreSQL's magic
number and that directory's device and inode, nothing may be attached to it any more (no process of
that server lives), and the control segment must carry its own magic number.
"""
from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

SHM_DIR = Path("/dev/shm")
SYSV_TABLE = Path("/proc/sysvipc/shm")
PIDFILE_SHMEM_LINE = 6  # 0-based line of postmaster.pid holding "<key> <shmid>"

SHMEM_MAGIC = 679834894  # PGShmemMagic (storage/pg_shmem.h)
DSM_CONTROL_MAGIC = 0x9A503D32  # PG_DYNSHMEM_CONTROL_MAGIC (storage/ipc/dsm.c)
# PGShmemHeader (64-bit): int32 magic, pid_t creatorPID, Size totalsize, Size freeoffset,
# dsm_handle dsm_control (+ padding), void *index, dev_t device, ino_t inode
SHIM = struct.Struct("=iiQQI4xQQQ")
# dsm_control_header: uint32 magic, nitems, maxitems; then items of 40 bytes from offset 16, each
# starting with dsm_handle handle, uint32 refcnt (0: a free slot)
CONTROL = struct.Struct("=III")
ITEM = struct.Struct("=II")
ITEMS_AT, ITEM_SIZE = 16, 40

SHM_RDONLY = 0o10000
IPC_RMID = 0


@dataclass
class Leftover:
    """A dead server's segments: the shim's id and the /dev/shm files (control segment first)."""
    datadir: Path
    key: int
    shmid: int
    files: list[Path] = field(default_factory=list)

    def describe(self) -> list[str]:
        return ([f"shared memory {p.name} ({self.datadir.name})" for p in self.files]
                + [f"System V shared memory id {self.shmid} ({self.datadir.name})"])


def leftover(datadir: Path) -> Leftover | None:
    """The segments a killed server of `datadir` left; None when there are none or they cannot be
    proven to be its own (a clean shutdown removes postmaster.pid, and with it any claim)."""
    datadir = Path(datadir)
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
        key, shmid = (int(x) for x in lines[PIDFILE_SHMEM_LINE].split())
        st = os.stat(datadir)
    except (OSError, ValueError, IndexError):
        return None
    if sysv_segments().get(shmid) != (key, 0):  # gone, reused, or a process still attached
        return None
    raw = _read_sysv(shmid, SHIM.size)
    if raw is None:
        return None
    magic, _pid, _total, _free, control, _index, device, inode = SHIM.unpack(raw)
    if magic != SHMEM_MAGIC or inode != st.st_ino or device != st.st_dev:
        return None
    found = Leftover(datadir, key, shmid)
    if control:
        found.files = _dsm_files(control)
    return found


def release(datadir: Path) -> list[str]:
    """Remove what a killed server of `datadir` left; what was removed, one line each."""
    found = leftover(datadir)
    if found is None:
        return []
    removed = []
    for path in found.files:
        try:
            path.unlink()
            removed.append(f"shared memory {path.name} ({found.datadir.name})")
        except FileNotFoundError:
            pass
    if _libc().shmctl(found.shmid, IPC_RMID, None) == 0:
        removed.append(f"System V shared memory id {found.shmid} ({found.datadir.name})")
    return removed


def release_under(root: Path, depth: int = 3) -> list[str]:
    """`release` for every data directory under `root` (a run's data root)."""
    root = Path(root)
    if not root.is_dir():
        return []
    removed: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        if "postmaster.pid" in files:
            removed += release(Path(dirpath))
            dirs[:] = []  # inside a data directory
        elif len(Path(dirpath).relative_to(root).parts) >= depth:
            dirs[:] = []
    return removed


def sysv_segments() -> dict[int, tuple[int, int]]:
    """Every System V shared memory segment: shmid → (key, processes attached)."""
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = SYSV_TABLE.read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        cols = line.split()
        try:
            out[int(cols[1])] = (int(cols[0]), int(cols[6]))
        except (IndexError, ValueError):
            continue
    return out


def _dsm_files(control: int) -> list[Path]:
    """The control segment and the segments it lists as in use, those that exist in /dev/shm."""
    path = SHM_DIR / f"PostgreSQL.{control}"
    try:
        data = path.read_bytes()
    except OSError:
        return []
    if len(data) < ITEMS_AT:
        return []
    magic, nitems, maxitems = CONTROL.unpack_from(data)
    if magic != DSM_CONTROL_MAGIC:
        return []
    nitems = min(nitems, maxitems, (len(data) - ITEMS_AT) // ITEM_SIZE)
    files = [path]
    for i in range(nitems):
        handle, refcnt = ITEM.unpack_from(data, ITEMS_AT + i * ITEM_SIZE)
        segment = SHM_DIR / f"PostgreSQL.{handle}"
        # a segment in the main shared memory area has no file: only existing ones are listed
        if refcnt > 0 and handle != control and segment.exists():
            files.append(segment)
    return files


def _read_sysv(shmid: int, size: int) -> bytes | None:
    libc = _libc()
    addr = libc.shmat(shmid, None, SHM_RDONLY)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        return None
    try:
        return ctypes.string_at(addr, size)
    finally:
        libc.shmdt(ctypes.c_void_p(addr))


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        libc.shmdt.argtypes = [ctypes.c_void_p]
        libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        _LIBC = libc
    return _LIBC
