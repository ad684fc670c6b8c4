"""Write beside, then swap in: a file or folder is either its old version or the complete new one.

    with atomic.writing_file("checkpoints/run/step_001000.pth") as f:
        torch.save(state, f)
    with atomic.writing_dir("result/gmm_final.pth/test/warp-cloth") as folder:
        ...  # write into `folder`; it replaces the target only if the block ends without error

Every checkpoint, resume state, result folder and dataset folder the project writes goes through
these two helpers, so an interrupted or failed run never leaves a half-written file or a folder
that mixes old and new results.
"""
import os
import shutil
from contextlib import contextmanager


@contextmanager
def writing_file(path, mode="wb"):
    """Yield a file open on a temporary file beside `path`; when the block ends without error the
    file is flushed to disk and renamed over `path`, else removed. Makes the folder."""
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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
    os.makedirs(os.path.dirname(target), exist_ok=True)
    new = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.partial-{os.getpid()}")
    shutil.rmtree(new, ignore_errors=True)  # left by a killed run whose process id was this one
    os.mkdir(new)  # (not mkdtemp, whose folders are private: this one becomes the result)
    try:
        yield new
        swap_in(new, target, keep_old)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
