"""Get data for CP-VTON: the real VITON dataset, the procedural sample set, or the checkpoints.

    python data_download.py                 # VITON (viton_resize.tar.gz from Google Drive) -> data/
    python data_download.py --sample        # procedural sample set, seconds, no network -> data/
    python data_download.py --checkpoints   # published GMM / TOM checkpoints -> checkpoints/
    python data_download.py --variant cpvton+   # where to get CP-VTON+'s data and checkpoints

VITON's `viton_resize/train` and `viton_resize/test` become `data/train` and `data/test`, with
`train_pairs.txt` and `test_pairs_same.txt` (same-id pairs of each split, the latter for paired
evaluation) and the original unpaired `test_pairs.txt` from the original repository.

Safe to rerun: finished steps are skipped unless --force. Downloads resume. Archives are extracted
into a temporary folder, refusing members that would land outside it (absolute paths, `..`, links,
devices), and moved into place when complete. Files this script did not write are never deleted (a
sample set from --sample is replaced): data in the way is refused, or with --force renamed to
`<name>.old`.
"""
import argparse
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import atomic
import cp_dataset
import sample_data

DATA_URL = 'https://drive.google.com/uc?id=1MxCUvKxejnwWnoZ-KoCyMCXo3TLhRuTo'
PAIRS_URL = 'https://raw.githubusercontent.com/sergeywong/cp-vton/master/data/test_pairs.txt'
CHECKPOINTS_URL = 'https://drive.google.com/uc?id=18ncLRuKLFtGKabaco9Bur1wCTVQjvAI1'
ARCHIVE = 'viton_resize.tar.gz'
PAIRS_FILES = ('train_pairs.txt', 'test_pairs.txt', 'test_pairs_same.txt')
CHECKPOINTS = {'GMM': ('gmm_train_new', 'gmm_final.pth'), 'TOM': ('tom_train_new', 'tom_final.pth')}
CHECKPOINTS_ADVICE = ('Or download the checkpoints in a browser (a zip or a folder) and pass its path: '
                      '--checkpoints_url PATH.')
TIMEOUT = (5, 60)  # seconds: connect (short, so being offline fails fast), then between bytes
# CP-VTON+'s VITON_PLUS data and checkpoints: OneDrive share links (its README's), no direct download.
PLUS_REPOSITORY = 'https://github.com/minar09/cp-vton-plus'
PLUS_DATA_URL = 'https://1drv.ms/u/s!Ai8t8GAHdzVUiQQYX0azYhqIDPP6?e=4cpFTI'
PLUS_CHECKPOINTS_URL = 'https://1drv.ms/u/s!Ai8t8GAHdzVUiQA-o3C7cnrfGN6O?e=EaRiFP'
SAMPLE_HINT = ('To try CP-VTON without the real data, run `python data_download.py --sample`, '
               'which writes a small procedural dataset in the same layout in seconds.')


class DownloadFailed(RuntimeError):
    """A download, an archive or a placement failed; the message says what and what to do."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.cause = cause


class UnsafeArchive(DownloadFailed):
    """An archive member would land outside the target folder (or is a link or a device)."""


# ----------------------------------------------------------------------------------------
# Downloading

def _as_url(source):
    """A Google Drive file id becomes its download URL; URLs pass through."""
    return f'https://drive.google.com/uc?id={source}' if re.fullmatch(r'[-\w]{25,}', source) else source


def _reason(err):
    """The useful part of a requests / gdown error, on one line."""
    text = ' '.join(str(err).split()) or type(err).__name__
    return text if len(text) < 300 else text[:300] + '...'


def fetch(source, dest, what, advice='', quiet=False):
    """Download `source` (URL or Google Drive id) to `dest` with gdown, resuming from (or, if the
    server cannot resume, restarting) a partial `<dest>XXXXXXXX.part` that gdown renames when
    complete. Raises DownloadFailed naming `what`, the URL and the reason, followed by `advice`."""
    import gdown
    import requests

    url, dest = _as_url(source), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    parts = sorted(dest.parent.glob(f'{dest.name}????????.part'), key=lambda p: p.stat().st_size)
    for stale in parts[:-1]:  # gdown resumes from one partial file: keep the longest
        stale.unlink()
    for attempt in range(2):
        try:
            gdown.download(url, str(dest), quiet=quiet, resume=True, timeout=TIMEOUT)
            return dest
        except gdown.exceptions.DownloadError as err:
            if attempt == 0 and 'byte range' in str(err):  # cannot resume: start again
                for part in dest.parent.glob(f'{dest.name}????????.part'):
                    part.unlink()
                print(f'{url} cannot resume the partial download; starting again', file=sys.stderr)
                continue
            failure = err
        except (requests.RequestException, gdown.exceptions.FileURLRetrievalError, OSError) as err:
            failure = err
        raise DownloadFailed(
            f'Could not download {what} from {url}: {_reason(failure)}. Check the network '
            'connection; Google Drive also refuses much-requested files for a while, so try again '
            f'later. {advice}'.strip(), failure) from failure


# ----------------------------------------------------------------------------------------
# Extracting safely

def _members(archive):
    """(name, kind, open) for each member of a tar (any compression) or zip archive, in order."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                mode = info.external_attr >> 16
                kind = 'link' if stat.S_ISLNK(mode) else 'dir' if info.is_dir() else 'file'
                yield info.filename, kind, lambda info=info: zf.open(info)
        return
    with tarfile.open(archive, 'r:*') as tar:
        for member in tar:  # streamed: a damaged archive fails here, part way
            kind = ('dir' if member.isdir() else 'file' if member.isfile() else
                    'link' if member.issym() or member.islnk() else 'device or special file')
            yield member.name, kind, lambda member=member: tar.extractfile(member)


def _unsafe(name, kind, root):
    """Why member `name` must not be extracted into `root`, or None if it is fine."""
    if kind == 'link':
        return 'it is a link'
    if kind not in ('file', 'dir'):
        return f'it is a {kind}'
    path = PurePosixPath(name.replace('\\', '/'))
    if path.is_absolute() or re.match(r'[A-Za-z]:', name):
        return 'it has an absolute path'
    if '..' in path.parts:
        return "its path contains '..'"
    if not (root / path).resolve().is_relative_to(root):
        return 'it would land outside the target folder'
    return None


def safe_extract(archive, dest):
    """Extract a .tar(.gz) or .zip into `dest` (a temporary folder: members already written stay),
    raising UnsafeArchive for a member that would land outside it, DownloadFailed if damaged."""
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        for name, kind, open_member in _members(archive):
            reason = _unsafe(name, kind, root)
            if reason:
                raise UnsafeArchive(f'{archive}: refusing archive member {name!r} ({reason})')
            target = root / name
            try:
                if kind == 'dir':
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open_member() as src, open(target, 'wb') as out:
                    shutil.copyfileobj(src, out)
            except (FileExistsError, IsADirectoryError, NotADirectoryError) as err:
                raise UnsafeArchive(f'{archive}: refusing archive member {name!r}: it clashes with an '
                                    'earlier member (a file and a folder of the same name)', err) from err
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DownloadFailed(f'{archive} is damaged or incomplete ({_reason(err)})', err) from err


# ----------------------------------------------------------------------------------------
# Data in the way: renamed to <name>.old, never deleted

def _aside(path):
    """`<path>.old`, where `path` goes when it is in the way; refused while that name is taken."""
    old = path.with_name(path.name + '.old')
    if old.exists() or old.is_symlink():
        raise DownloadFailed(f'{path} is in the way and {old} already exists (set aside by an '
                             f'earlier --force): delete or move {old}, then run again')
    return old


def _move_aside(paths):
    """Rename each of `paths` to `<path>.old`; if any of those names is taken, none is moved."""
    olds = [_aside(path) for path in paths]
    for path, old in zip(paths, olds):
        path.rename(old)
        print(f'moved {path} aside to {old}')


def _move_in(new, target):
    """Rename `new` to `target`, first renaming whatever is at `target` to `<target>.old`."""
    old = _aside(target) if target.exists() or target.is_symlink() else None
    atomic.swap_in(new, target, keep_old=old)
    if old:
        print(f'moved the previous {target} aside to {old}')


# ----------------------------------------------------------------------------------------
# The real dataset

def _has_splits(folder):
    """Whether `folder` holds train/ and test/, each with every input folder of the layout."""
    return all((folder / split / sub).is_dir() for split in cp_dataset.SPLITS for sub in cp_dataset.INPUT_FOLDERS)


def _place_splits(root, archive):
    """Extract `archive` beside the splits and move its train/ and test/ into `root`."""
    with tempfile.TemporaryDirectory(prefix='.viton_resize-extract-', dir=root) as tmp:
        print(f'extracting {archive} ...')
        safe_extract(archive, tmp)
        source = next((c for c in (Path(tmp) / 'viton_resize', Path(tmp)) if _has_splits(c)), None)
        if source is None:
            found = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob('*') if p.is_dir())[:8]
            raise DownloadFailed('the archive has no viton_resize/train and viton_resize/test folders '
                                 f'with {", ".join(cp_dataset.INPUT_FOLDERS)} '
                                 f'(found: {", ".join(found) or "nothing"})')
        if sample_data.read_marker(root):
            removed = sample_data.remove_sample(root)
            print(f'removed the sample dataset that was in {root} ({removed} files)')
        for split in cp_dataset.SPLITS:
            _move_in(source / split, root / split)


def _get_splits(root, url, force, quiet):
    """Download the archive (unless it is already there) and lay out its splits in `root`."""
    in_the_way = [] if sample_data.read_marker(root) else [
        root / split for split in cp_dataset.SPLITS if (root / split).exists()]
    if in_the_way and not force:
        raise DownloadFailed(
            f'{" and ".join(map(str, in_the_way))} already exist but are not a complete VITON '
            'download; not touching them. Use another --dataroot, or --force to move them aside '
            '(renamed to <name>.old) after the download.')
    for path in in_the_way:
        _aside(path)  # refuse now, not after the download
    archive = root / ARCHIVE
    downloaded = not archive.exists()
    if downloaded:
        fetch(url, archive, 'the VITON dataset (viton_resize.tar.gz)', quiet=quiet,
              advice=f'Or download the file in a browser and save it as {archive}: it is '
                     f'picked up from there. {SAMPLE_HINT}')
    else:
        print(f'using the existing {archive}')
    try:
        _place_splits(root, archive)
    except DownloadFailed as err:  # nothing was moved into place
        if downloaded:
            archive.unlink()  # ours and useless
        tail = 'deleted the download' if downloaded else 'it was there before this run: delete or replace it'
        raise DownloadFailed(f'{err}; {root} is unchanged; {tail}', err.cause) from None
    if downloaded:
        archive.unlink()
    else:
        print(f'kept {archive} (it was there before this run; delete it to save space)')


def _write_pairs(root, name, pairs):
    """Write a pairs file; a different one already there is renamed to `<name>.old` first."""
    path = root / name
    if path.exists():
        if cp_dataset.read_pairs(path, problems=[]) == pairs:
            print(f'{path} is up to date')
            return
        _move_aside([path])
    cp_dataset.write_pairs(path, pairs)
    print(f'wrote {path} ({len(pairs)} pairs)')


def _fetch_test_pairs(root, pairs_url, quiet):
    """The original unpaired test list, checked against the test split."""
    with tempfile.TemporaryDirectory(prefix='.test_pairs-', dir=root) as tmp:
        try:
            path = fetch(pairs_url, Path(tmp) / 'test_pairs.txt', 'the original test_pairs.txt', quiet=quiet)
        except DownloadFailed as err:
            raise DownloadFailed(
                f'Could not fetch the original test_pairs.txt from {_as_url(pairs_url)}: '
                f'{_reason(err.cause or err)}. {root}/train and {root}/test are in place, with '
                f'train_pairs.txt and test_pairs_same.txt (paired test list); only the unpaired '
                f'test list is missing. Run `python data_download.py` again when online to '
                f'fetch it (the data is not downloaded again).', err.cause) from err
        problems = []
        pairs = cp_dataset.read_pairs(path, problems)
    if problems:
        raise DownloadFailed(f'{_as_url(pairs_url)} is not a pairs list ({problems[0]})')
    missing = [(person, cloth) for person, cloth in pairs if not all(
        Path(cp_dataset.pair_paths(root / 'test', person, cloth)[key]).is_file() for key in ('image', 'cloth'))]
    if missing:
        print(f'warning: {len(missing)} of {len(pairs)} pairs in test_pairs.txt name files '
              f'missing from {root}/test (first: {" ".join(missing[0])})', file=sys.stderr)
    return pairs


def download_dataset(dataroot='data', url=DATA_URL, pairs_url=PAIRS_URL, force=False, quiet=False):
    """Download VITON into `dataroot` (see the module doc); raises DownloadFailed."""
    root = Path(dataroot)
    root.mkdir(parents=True, exist_ok=True)
    if _has_splits(root) and not sample_data.read_marker(root) and not force:
        print(f'{root}/train and {root}/test are already in place (--force downloads them again)')
    else:
        _get_splits(root, url, force, quiet)
    for split, name in (('train', 'train_pairs.txt'), ('test', 'test_pairs_same.txt')):
        if force or not (root / name).exists():
            _write_pairs(root, name, cp_dataset.same_id_pairs(root / split))
    if force or not (root / 'test_pairs.txt').exists():
        _write_pairs(root, 'test_pairs.txt', _fetch_test_pairs(root, pairs_url, quiet))
    print(f'VITON is ready in {root}')


# ----------------------------------------------------------------------------------------
# The sample dataset

def make_sample_dataset(dataroot='data', n_train=sample_data.N_TRAIN, n_test=sample_data.N_TEST, seed=0,
                        force=False):
    """Write the procedural sample set into `dataroot`, replacing only an earlier sample set; other
    data there is refused unless `force`, which renames it aside first."""
    root = Path(dataroot)
    marker = sample_data.read_marker(root)
    if marker:
        wanted = dict(n_train=n_train, n_test=n_test, seed=seed)
        same = all(marker.get(k) == v for k, v in wanted.items()) and marker.get('complete')
        if same and not force and all((root / f).is_file() for f in marker['files']):
            print(f'the sample dataset ({n_train} train, {n_test} test, seed {seed}) is already in '
                  f'{root} (--force writes it again)')
            return
        removed = sample_data.remove_sample(root)
        print(f'removed the previous sample dataset in {root} ({removed} files)')
    else:
        existing = [root / n for n in (*cp_dataset.SPLITS, *PAIRS_FILES) if (root / n).exists()]
        if existing and not force:
            raise DownloadFailed(
                f'{root} already holds a dataset ({", ".join(p.name for p in existing)}) that is not a '
                f'sample set written by this script; not overwriting it. Use another --dataroot (e.g. '
                f'--dataroot data_sample), or --force to move it aside (renamed to <name>.old).')
        _move_aside(existing)
    sample_data.generate(root, n_train=n_train, n_test=n_test, seed=seed)
    print(f'wrote the sample dataset to {root}: {n_train} train and {n_test} test persons '
          f'(train_pairs.txt, test_pairs.txt unpaired, test_pairs_same.txt paired)')


# ----------------------------------------------------------------------------------------
# Checkpoints

def verify_checkpoint(path, stage):
    """Raise DownloadFailed unless `path` loads as a `stage` ('GMM'/'TOM') model."""
    import networks

    try:
        state = networks.safe_load(path)
        found = networks.checkpoint_stage(state) if isinstance(state, dict) else None
        if found == stage:
            networks.load_checkpoint(networks.build_model(stage), path, stage)
    except Exception as err:  # CheckpointError, unpickling errors, ...
        raise DownloadFailed(f'{path} does not load as a {stage} checkpoint: {_reason(err)}', err) from err
    if found != stage:
        raise DownloadFailed(f'{path} is not a {stage} checkpoint (it looks like '
                             f'{found or "neither a GMM nor a TOM checkpoint"})')


def _get_checkpoint_files(source, folder, quiet):
    """The checkpoints into `folder`, from a local folder or zip/tar, or a zip/tar URL or Drive file id."""
    local = Path(source)
    if local.is_dir():
        shutil.copytree(local, folder)
        return
    archive = local if local.is_file() else fetch(source, folder.with_name('checkpoints.download'),
                                                  'the CP-VTON checkpoints', CHECKPOINTS_ADVICE, quiet)
    if not (zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive)):
        raise DownloadFailed(f'{source} is not a zip or tar archive. {CHECKPOINTS_ADVICE}')
    safe_extract(archive, folder)


def download_checkpoints(checkpoint_dir='checkpoints', url=CHECKPOINTS_URL, force=False, quiet=False):
    """Place the published gmm_final.pth / tom_final.pth under `checkpoint_dir` and verify them."""
    base = Path(checkpoint_dir)
    todo = {}
    for stage, (sub, name) in CHECKPOINTS.items():
        target = base / sub / name
        if target.exists() and not force:
            try:
                verify_checkpoint(target, stage)
            except DownloadFailed as err:
                raise DownloadFailed(f'{err}; not replacing it: move it away, or use --force '
                                     '(renames it to <name>.old)') from None
            print(f'{target} is already in place (--force downloads it again)')
            continue
        if target.exists():
            _aside(target)  # refuse now, not after the download
        todo[stage] = target
    if not todo:
        return
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='.checkpoints-download-', dir=base) as tmp:
        files = Path(tmp) / 'files'
        _get_checkpoint_files(url, files, quiet)
        for stage, target in todo.items():
            found = sorted(files.rglob(target.name))
            if not found:
                names = sorted(p.name for p in files.rglob('*') if p.is_file())[:10]
                raise DownloadFailed(f'the download has no {target.name} (found: '
                                     f'{", ".join(names) or "no files"})')
            verify_checkpoint(found[0], stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            _move_in(found[0], target)
            print(f'placed {target} (verified: loads as the {stage} network)')


# ----------------------------------------------------------------------------------------
# CP-VTON+: links only

def plus_instructions(dataroot='data', checkpoint_dir='checkpoints'):
    """Where to get CP-VTON+'s dataset and checkpoints by hand, where to put them, and the check."""
    root, plus = Path(dataroot), cp_dataset.VARIANTS['cpvton+']
    gmm, tom = (Path(checkpoint_dir, f'{stage}_train_plus', f'{stage}_final.pth') for stage in ('gmm', 'tom'))
    return f"""Nothing was downloaded: CP-VTON+'s files are on Microsoft OneDrive, with no stable direct link.
Download them in a browser (the links of the README of {PLUS_REPOSITORY}):
  dataset VITON_PLUS, {PLUS_DATA_URL}
    (the whole VITON layout plus {plus.parse_folder}/ and {plus.body_folder}/): unpack it so that
    {root / 'train' / plus.parse_folder}/, {root / 'train' / plus.body_folder}/ (and the same in test/)
    lie beside {root}/train/image/ and the other VITON folders, and {root}/train_pairs.txt and
    {root}/test_pairs.txt exist
  checkpoints, {PLUS_CHECKPOINTS_URL}
    put them at {gmm} and {tom}
Then check the data:
  python cp_dataset.py --check --variant cpvton+ --dataroot {root} --datamode train --data_list train_pairs.txt
Or, without downloading: python data_download.py --sample (it writes both layouts)."""


# ----------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Download the VITON dataset for CP-VTON into --dataroot (default), or write the '
                    'procedural sample dataset (--sample), and/or fetch the published checkpoints '
                    '(--checkpoints). Safe to rerun: finished steps are skipped.')
    parser.add_argument('--sample', action='store_true',
                        help='write the procedural sample dataset instead (no network, seconds)')
    parser.add_argument('--train', type=int, default=sample_data.N_TRAIN,
                        help=f'--sample: number of train persons (default {sample_data.N_TRAIN})')
    parser.add_argument('--test', type=int, default=sample_data.N_TEST,
                        help=f'--sample: number of test persons (default {sample_data.N_TEST}, >= 2)')
    parser.add_argument('--seed', type=int, default=0, help='--sample: random seed (same seed, same files)')
    parser.add_argument('--dataroot', default='data', help='dataset folder (default: data)')
    parser.add_argument('--force', action='store_true',
                        help='redo finished steps; data in the way (but a sample set) is renamed to '
                             '<name>.old, never deleted')
    parser.add_argument('--url', default=DATA_URL,
                        help='where viton_resize.tar.gz comes from: URL or Google Drive file id '
                             '(default: the original Drive file)')
    parser.add_argument('--pairs_url', '--pairs-url', default=PAIRS_URL,
                        help="the original test_pairs.txt (default: the cp-vton repository's)")
    parser.add_argument('--checkpoints', action='store_true',
                        help='download the published GMM and TOM checkpoints to '
                             '<checkpoint_dir>/{gmm,tom}_train_new/{gmm,tom}_final.pth and verify them '
                             '(only the checkpoints, unless --sample is given too)')
    parser.add_argument('--checkpoints_url', '--checkpoints-url', default=CHECKPOINTS_URL,
                        help='where the checkpoints come from: a zip/tar URL or Google Drive file id, '
                             'or a local zip/tar or folder downloaded in a browser (default: the '
                             'original Drive link)')
    parser.add_argument('--checkpoint_dir', default='checkpoints', help='default: checkpoints')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    parser.add_argument('--variant', default='cpvton', choices=list(cp_dataset.VARIANTS),
                        help="cpvton (default); cpvton+: print where to get CP-VTON+'s dataset and "
                             'checkpoints (OneDrive, no direct link: nothing is downloaded) and where '
                             'to put them; with --sample, write the sample set (it has both layouts)')
    args = parser.parse_args(argv)
    for flag in ('dataroot', 'checkpoint_dir'):
        if Path(getattr(args, flag)).exists() and not Path(getattr(args, flag)).is_dir():
            parser.error(f'--{flag} {getattr(args, flag)} is a file, not a folder')
    plus = args.variant == 'cpvton+'
    try:
        if args.sample:
            make_sample_dataset(args.dataroot, args.train, args.test, args.seed, args.force)
        elif not args.checkpoints and not plus:
            download_dataset(args.dataroot, args.url, args.pairs_url, args.force, args.quiet)
        if plus and (args.checkpoints or not args.sample):
            print(plus_instructions(args.dataroot, args.checkpoint_dir))
        elif args.checkpoints:
            download_checkpoints(args.checkpoint_dir, args.checkpoints_url, args.force, args.quiet)
    except (DownloadFailed, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    atomic.run(main)
