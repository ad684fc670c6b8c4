"""Write beside, then swap in: a file or folder is either its old version or the complete new one.

    with atomic.writing_file("checkpoints/run/step_001000.pth") as f:
        torch.save(state, f)
    with atomic.writing_dir("result/gmm_final.pth/test/warp-cloth") as folder:
        ...  # write into `folder`; it replaces the target only if the block ends without error

Every checkpoint, resume state, result folder and dataset folder the project writes goes through
these two helpers, so an interrupted or failed run never leaves a half-written file or a folder
that mixes old and new results. The temporary names carry the writer's process id: what a killed
run left behind is removed by the next write to the same target.

`run(main)` runs a command's main function and turns an OSError (a full disk, a folder that
cannot be written) into a one-line message naming the file, instead of a traceback.
"""
import errno
import os
import re
import shutil
import sys
from contextlib import contextmanager


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(folder, prefix):
    """Remove the entries '<prefix><pid>...' of `folder` whose process is gone (a killed run's)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    for name in os.listdir(folder):
        match = pattern.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            path = os.path.join(folder, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def explained(err, path):
    """`err` (an OSError met while writing `path`) with a message a user can act on."""
    if err.errno == errno.ENOSPC:
        return OSError(err.errno, f"no space left on the device writing {path}; free some space "
                                  "and run again (the previous version is kept)")
    return err if err.filename else OSError(err.errno, f"{err.strerror or err} writing {path}")


@contextmanager
def writing_file(path, mode="wb"):
    """Yield a file open on a temporary file beside `path`; when the block ends without error the
    file is flushed to disk and renamed over `path`, else removed. Makes the folder."""
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    _remove_stale(folder, f".{name}.")
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        try:
            with open(tmp, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as err:
            raise explained(err, path) from err
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def swap_in(new, target, keep_old=None):
    """Rename folder `new` to `target`. An existing `target` is first renamed to `keep_old` (a path)
    or, without it, deleted once the new folder is in place."""
    old = keep_old
    if os.path.lexists(target):
        old = keep_old or f"{os.path.abspath(new)}.old"
        os.rename(target, old)
    os.rename(new, target)
    if old and not keep_old:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def writing_dir(target, keep_old=None):
    """Yield a new empty folder beside `target`; when the block ends without error it replaces
    `target` (see swap_in), else it is removed and `target` is left as it was."""
    target = os.path.abspath(os.fspath(target))
    folder, name = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    _remove_stale(folder, f".{name}.partial-")
    new = os.path.join(folder, f".{name}.partial-{os.getpid()}")
    shutil.rmtree(new, ignore_errors=True)  # (a killed run of this process id's)
    os.mkdir(new)  # (not mkdtemp, whose folders are private: this one becomes the result)
    try:
        yield new
        swap_in(new, target, keep_old)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def run(main, *args):
    """sys.exit(main(*args)), with an OSError (full disk, unwritable folder, ...) reported as
    'error: <what, naming the file>' and exit status 1 instead of a traceback."""
    try:
        sys.exit(main(*args))
    except OSError as err:
        if err.errno == errno.ENOSPC and "no space left" not in str(err):
            err = explained(err, err.filename or "a file")
        sys.exit(f"error: {err}")
