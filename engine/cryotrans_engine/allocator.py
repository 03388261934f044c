"""Keeping freed memory in the process while training on the CPU (glibc Linux only).

Every training step allocates the same large tensors again (activations of the velocity
MLP, their gradients, float64 Sinkhorn work arrays).  glibc serves blocks of more than
128 KB with fresh mmap pages and hands them back on free, so each step pays for zeroing
and faulting in every page again: measured on a 2-core CPU at 128³, a step took 2.0 s
with that and 1.36 s with freed memory kept for reuse.  While any run trains, glibc is
told to serve large blocks from its heap and not to trim it; when the last run ends the
usual limits come back and the heap is trimmed, so ChimeraX returns the memory to the
system.  Only for steps whose largest tensor is above 32 MB, the most glibc's adaptive
threshold ever serves from its heap: below that it already reuses memory, and the 64³
demo ran no faster (43 vs 46 s in a worker thread) with the setting.  Elsewhere (CUDA has
its own caching allocator; macOS, Windows) this does nothing.
"""

import ctypes
import sys
import threading
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
LARGE = 32 << 20     # glibc's largest adaptive mmap threshold on 64-bit systems
_lock = threading.Lock()
_users = 0


def _glibc():
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, 'mallopt') and hasattr(libc, 'malloc_trim') else None
    except OSError:
        return None


@contextmanager
def freed_memory_kept(device, largest):
    """While inside, freed CPU memory stays in the process for the next step, when a step's
    largest tensor (bytes) is above LARGE (see above)."""
    libc = _glibc() if getattr(device, 'type', device) == 'cpu' and largest > LARGE else None
    if libc is None:
        yield
        return
    global _users
    with _lock:
        if _users == 0:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)


def kept_now():
    """Whether some run is keeping freed memory at this moment (for tests)."""
    return _users > 0
