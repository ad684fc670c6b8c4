"""Get data for CP-VTON: VITON, VITON-HD, how to request Dress Code, the procedural sample set in any
of their layouts, or the checkpoints.

    python data_download.py                      # VITON (viton_resize.tar.gz, Google Drive) -> data/
    python data_download.py --dataset vitonhd    # VITON-HD (its zip, Google Drive, several GB)
                                                 #   -> data/zalando-hd-resized/
    python data_download.py --dataset dresscode  # how to request Dress Code, where to unpack it
    python data_download.py --sample [--dataset D]   # procedural sample set in D's layout, seconds
    python data_download.py --checkpoints        # published GMM / TOM checkpoints -> checkpoints/
    python data_download.py --variant cpvton+    # where to get CP-VTON+'s data and checkpoints

VITON's `viton_resize/train` and `viton_resize/test` become `data/train` and `data/test`, with
`train_pairs.txt` and `test_pairs_same.txt` (same-id pairs of each split, the latter for paired
evaluation) and the original unpaired `test_pairs.txt` from the original repository. VITON-HD's
zip is laid out as it comes (train/, test/, train_pairs.txt, test_pairs.txt), plus
`test_pairs_same.txt`: each test person with the garment of the same file name, the paired list
VITON-HD does not ship. Dress Code is given out on request only: nothing is downloaded.

Safe to rerun: finished steps are skipped unless --force. Downloads resume. Archives are extracted
into a temporary folder, refusing members that would land outside it (absolute paths, `..`, links,
devices), and moved into place when complete. Files this script did not write are never deleted (a
sample set from --sample is replaced): data in the way is refused, or with --force renamed to
`<name>.old`.
"""
import argparse
import json
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections import namedtuple
from pathlib import Path, PurePosixPath

import atomic
import cp_dataset
import layouts
import sample_data

DATA_URL = 'https://drive.google.com/uc?id=1MxCUvKxejnwWnoZ-KoCyMCXo3TLhRuTo'
PAIRS_URL = 'https://raw.githubusercontent.com/sergeywong/cp-vton/master/data/test_pairs.txt'
CHECKPOINTS_URL = 'https://drive.google.com/uc?id=18ncLRuKLFtGKabaco9Bur1wCTVQjvAI1'
ARCHIVE = 'viton_resize.tar.gz'
VITONHD_URL = 'https://drive.google.com/uc?id=1tLx8LRp-sxDp0EcYmYoV_vXdSc-jJ79w'
VITONHD_ARCHIVE = 'zalando-hd-resized.zip'
VITONHD_PAIRS = ('train_pairs.txt', 'test_pairs.txt')  # shipped beside train/ and test/
# The sub-folders of a VITON-HD split that CP-VTON reads, each with its accepted names (the released
# zip's first, then the older one of VITON-HD's own code and test samples).
VITONHD_FOLDERS = (('image',), ('cloth',), ('cloth-mask',), layouts.LAYOUTS['vitonhd'].parse_folders,
                   layouts.LAYOUTS['vitonhd'].pose_folders)
DRESSCODE_REPOSITORY = 'https://github.com/aimagelab/dress-code'
DRESSCODE_FORM = 'https://forms.gle/72Bpeh48P7zQimin7'
DRESSCODE_PAIRS = ('train_pairs.txt', 'test_pairs_paired.txt', 'test_pairs_unpaired.txt')
LADI_VTON_REPOSITORY = 'https://github.com/miccunifi/ladi-vton'
CHECKPOINTS = {'GMM': ('gmm_train_new', 'gmm_final.pth'), 'TOM': ('tom_train_new', 'tom_final.pth')}
CHECKPOINTS_ADVICE = ('Or download the checkpoints in a browser (a zip or a folder) and pass its path: '
                      '--checkpoints_url PATH.')
TIMEOUT = (5, 60)  # seconds: connect (short, so being offline fails fast), then between bytes
# CP-VTON+'s VITON_PLUS data and checkpoints: OneDrive share links (its README's), no direct download.
PLUS_REPOSITORY = 'https://github.com/minar09/cp-vton-plus'
PLUS_DATA_URL = 'https://1drv.ms/u/s!Ai8t8GAHdzVUiQQYX0azYhqIDPP6?e=4cpFTI'
PLUS_CHECKPOINTS_URL = 'https://1drv.ms/u/s!Ai8t8GAHdzVUiQA-o3C7cnrfGN6O?e=EaRiFP'


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
# The real datasets: VITON and VITON-HD

def _has_splits(folder):
    """Whether `folder` holds train/ and test/, each with every input folder of the layout."""
    return all((folder / split / sub).is_dir() for split in cp_dataset.SPLITS for sub in cp_dataset.INPUT_FOLDERS)


def _missing_vitonhd(folder):
    """What `folder` lacks of the VITON-HD layout (pair files, split sub-folders), as 'test/cloth/'."""
    missing = [name for name in VITONHD_PAIRS if not (folder / name).is_file()]
    for split in cp_dataset.SPLITS:
        for names in VITONHD_FOLDERS:
            if not any((folder / split / name).is_dir() for name in names):
                missing.append(f'{split}/{names[0]}/' + ''.join(f' (or {name}/)' for name in names[1:]))
    return missing


def _folders(tmp):
    """A few folders of an extracted archive, for a message saying what it holds instead."""
    found = sorted(str(p.relative_to(tmp)) for p in tmp.rglob('*') if p.is_dir())[:8]
    return ', '.join(found) or 'nothing'


def _viton_source(tmp):
    """(folder, names): where the extracted VITON archive's train/ and test/ are, and those names."""
    source = next((c for c in (tmp / 'viton_resize', tmp) if _has_splits(c)), None)
    if source is None:
        raise DownloadFailed('the archive has no viton_resize/train and viton_resize/test folders '
                             f'with {", ".join(cp_dataset.INPUT_FOLDERS)} (found: {_folders(tmp)})')
    return source, cp_dataset.SPLITS


def _vitonhd_source(tmp):
    """(folder, names): the folder of the extracted VITON-HD zip that holds the pair files, train/
    and test/ (the zip's top or one level down: its top folder's name is not documented), and
    everything in it."""
    def holds(folder):
        return (all((folder / name).is_file() for name in VITONHD_PAIRS)
                and all((folder / split).is_dir() for split in cp_dataset.SPLITS))
    source = next((c for c in (tmp, *sorted(p for p in tmp.iterdir() if p.is_dir())) if holds(c)), None)
    if source is None:
        raise DownloadFailed(f'the archive has no folder with {", ".join(VITONHD_PAIRS)}, train/ and test/ '
                             f'at its top or one level down (found: {_folders(tmp)})')
    missing = _missing_vitonhd(source)
    if missing:
        where = '' if source == tmp else f'{source.name}/'
        raise DownloadFailed('the archive is not in the VITON-HD layout: it lacks '
                             + ', '.join(where + name for name in missing))
    # archivers' clutter (__MACOSX/, .DS_Store) stays out of the dataset root
    return source, sorted(p.name for p in source.iterdir() if not p.name.startswith(('__', '.')))


class Release(namedtuple('Release', 'title archive url names is_complete source')):
    """A dataset downloaded as one archive: `names` are the top-level names it places in the root
    (all of them, or those known before extraction), `is_complete(root)` whether they are in place,
    `source(tmp)` (folder, names) of the extracted archive (raises DownloadFailed)."""


RELEASES = {
    'viton': Release('VITON', ARCHIVE, DATA_URL, cp_dataset.SPLITS, _has_splits, _viton_source),
    'vitonhd': Release('VITON-HD', VITONHD_ARCHIVE, VITONHD_URL, (*cp_dataset.SPLITS, *VITONHD_PAIRS),
                       lambda root: not _missing_vitonhd(root), _vitonhd_source),
}


def sample_hint(dataset):
    """The advice to try the sample set, when the real data cannot be had."""
    option = '' if dataset == 'viton' else f' --dataset {dataset}'
    return (f'To try CP-VTON without the real data, run `python data_download.py --sample{option}`, '
            'which writes a small procedural dataset in the same layout in seconds.')


def _check_the_way(paths, force, title):
    """Refuse the data at `paths` (the user's) unless `force`; with it, refuse while a `<name>.old`
    it would be renamed to is taken. Called before anything is downloaded or moved."""
    in_the_way = [path for path in paths if path.exists() or path.is_symlink()]
    if in_the_way and not force:
        raise DownloadFailed(
            f'{", ".join(map(str, in_the_way))} already exist but are not a complete {title} '
            'download; not touching them. Use another --dataroot, or --force to move them aside '
            '(renamed to <name>.old).')
    for path in in_the_way:
        _aside(path)


def _move_contents(root, source, names, force, title):
    """Move `names` from `source` into `root`, replacing a sample set; other data in the way is
    refused unless `force`, which renames it to `<name>.old`."""
    _check_the_way([root / name for name in names], force, title)
    if sample_data.read_marker(root):
        removed = sample_data.remove_sample(root)
        print(f'removed the sample dataset that was in {root} ({removed} files)')
    for name in names:
        _move_in(source / name, root / name)


def _get_release(root, dataset, url, force, quiet):
    """Download the dataset's archive (unless it is already there) and lay out its contents in `root`."""
    release = RELEASES[dataset]
    sample = sample_data.read_marker(root) is not None
    if not sample:  # refuse now, not after the download
        _check_the_way([root / name for name in release.names], force, release.title)
    archive = root / release.archive
    downloaded = not archive.exists()
    if downloaded:
        fetch(url, archive, f'the {release.title} dataset ({release.archive})', quiet=quiet,
              advice=f'Or download the file in a browser and save it as {archive}: it is '
                     f'picked up from there. {sample_hint(dataset)}')
    else:
        print(f'using the existing {archive}')
    with tempfile.TemporaryDirectory(prefix=f'.{release.archive}-extract-', dir=root) as tmp:
        try:
            print(f'extracting {archive} ...')
            safe_extract(archive, tmp)
            source, names = release.source(Path(tmp))
        except DownloadFailed as err:  # nothing was moved into place
            if downloaded:
                archive.unlink()  # ours and useless
            tail = 'deleted the download' if downloaded else 'it was there before this run: delete or replace it'
            raise DownloadFailed(f'{err}; {root} is unchanged; {tail}', err.cause) from None
        try:
            _move_contents(root, source, names, force or sample, release.title)
        except DownloadFailed as err:
            raise DownloadFailed(f'{err} The download is kept as {archive} for the next run.') from None
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


# The paired lists made from the files, (split, name): each person with her own garment (same id
# in VITON, same file name in VITON-HD, which ships only unpaired lists). Dress Code ships its own.
PAIRED_LISTS = {'viton': (('train', 'train_pairs.txt'), ('test', 'test_pairs_same.txt')),
                'vitonhd': (('test', 'test_pairs_same.txt'),), 'dresscode': ()}


def _write_paired_lists(root, dataset, force):
    """The dataset's PAIRED_LISTS; one already there is kept unless `force`."""
    for split, name in PAIRED_LISTS[dataset]:
        if force or not (root / name).exists():
            _write_pairs(root, name, cp_dataset.same_id_pairs(root / split, dataset))


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


def download_dataset(dataroot=None, url=None, pairs_url=PAIRS_URL, force=False, quiet=False, dataset='viton'):
    """Download VITON or VITON-HD (`dataset`) into `dataroot` (default: the dataset's, in
    layouts.DEFAULT_ROOTS) from `url` (default: the official file); see the module doc. Raises
    DownloadFailed."""
    release = RELEASES[dataset]
    root = Path(dataroot or layouts.DEFAULT_ROOTS[dataset])
    root.mkdir(parents=True, exist_ok=True)
    if release.is_complete(root) and not sample_data.read_marker(root) and not force:
        print(f'{release.title} is already in place in {root} (--force downloads it again)')
    else:
        _get_release(root, dataset, url or release.url, force, quiet)
    _write_paired_lists(root, dataset, force)
    if dataset == 'viton' and (force or not (root / 'test_pairs.txt').exists()):
        _write_pairs(root, 'test_pairs.txt', _fetch_test_pairs(root, pairs_url, quiet))
    print(f'{release.title} is ready in {root}')


# ----------------------------------------------------------------------------------------
# Dress Code: on request only

def dresscode_instructions(dataroot=None):
    """How to request Dress Code, where to unpack it (and LaDI-VTON's garment masks), and the check."""
    root = Path(dataroot or layouts.DEFAULT_ROOTS['dresscode'])
    categories = '{' + ','.join(layouts.CATEGORIES) + '}'
    option = '' if root == Path(layouts.DEFAULT_ROOTS['dresscode']) else f' --dataroot {root}'
    return f"""Nothing was downloaded: Dress Code is given out on request only, with no direct link.
1. Request it with the form {DRESSCODE_FORM}
   (linked from {DRESSCODE_REPOSITORY}): it needs an institutional e-mail address and
   the release agreement signed by hand (typed signatures are refused; no release to private
   companies). Requests are validated weekly; the reply has the download link.
2. Unpack it so that these exist:
     {root}/{{{','.join(DRESSCODE_PAIRS)}}}
     {root}/{categories}/images/       NNNNNN_0.jpg (person), NNNNNN_1.jpg (garment)
     {root}/{categories}/keypoints/    NNNNNN_2.json
     {root}/{categories}/label_maps/   NNNNNN_4.png
     {root}/{categories}/skeletons/, dense/, and each category's pair files
3. Optionally, LaDI-VTON's garment masks (dresscode_masks.zip, from {LADI_VTON_REPOSITORY}):
   unpack them so that {root}/<category>/masks/NNNNNN_1.png exist. Without them CP-VTON
   makes the cloth masks itself on first use and caches them in {root}/<category>/cloth-mask/.
Then check the data (for each --category and --datamode):
  python cp_dataset.py --check --dataset dresscode{option} --category upper_body --datamode train --data_list train_pairs.txt
Or, without the data: python data_download.py --sample --dataset dresscode (a procedural set in its layout)."""


# ----------------------------------------------------------------------------------------
# The sample dataset

def _sample_names(n_train, n_test, dataset):
    """The names --sample writes at the top of the root: what of the user's it must not overwrite."""
    names = {name.split('/')[0] for name in sample_data.planned_files(n_train, n_test, dataset)}
    return sorted(names | {name for _, name in PAIRED_LISTS[dataset]})


def make_sample_dataset(dataroot=None, n_train=None, n_test=None, seed=0, force=False, dataset='viton'):
    """Write the procedural sample set in `dataset`'s layout into `dataroot` (default: the
    dataset's) with n_train + n_test persons (default: the dataset's counts), replacing only an
    earlier sample set; other data there is refused unless `force`, which renames it aside first."""
    root = Path(dataroot or layouts.DEFAULT_ROOTS[dataset])
    n_train, n_test = sample_data.counts(dataset, n_train, n_test)
    marker = sample_data.read_marker(root)
    if marker:
        wanted = dict(n_train=n_train, n_test=n_test, seed=seed)
        same = (all(marker.get(k) == v for k, v in wanted.items()) and marker.get('complete')
                and marker.get('dataset', 'viton') == dataset)
        if same and not force and all((root / f).is_file() for f in marker['files']):
            print(f'the sample dataset ({dataset}: {n_train} train, {n_test} test, seed {seed}) is already '
                  f'in {root} (--force writes it again)')
            return
        removed = sample_data.remove_sample(root)
        print(f'removed the previous sample dataset in {root} ({removed} files)')
    else:
        existing = [root / n for n in _sample_names(n_train, n_test, dataset) if (root / n).exists()]
        if existing and not force:
            raise DownloadFailed(
                f'{root} already holds a dataset ({", ".join(p.name for p in existing)}) that is not a '
                f'sample set written by this script; not overwriting it. Use another --dataroot (e.g. '
                f'--dataroot data_sample), or --force to move it aside (renamed to <name>.old).')
        _move_aside(existing)
    sample_data.generate(root, n_train=n_train, n_test=n_test, seed=seed, dataset=dataset)
    print(f'wrote the sample dataset in the {dataset} layout to {root}: {n_train} train and {n_test} '
          'test persons' + (' per category' if dataset == 'dresscode' else ''))
    added = [name for _, name in PAIRED_LISTS[dataset] if not (root / name).exists()]
    _write_paired_lists(root, dataset, force=False)
    if added:  # listed in the marker, so that they go with the sample set
        marker = sample_data.read_marker(root)
        marker['files'] += added
        with atomic.writing_file(root / sample_data.MARKER, 'w') as f:
            f.write(json.dumps(marker, indent=1))


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

def build_parser():
    """The command line of main(); every option's help says which datasets it applies to."""
    parser = argparse.ArgumentParser(
        description='Get a dataset for CP-VTON into --dataroot: download VITON (default) or VITON-HD, '
                    'or print how to request Dress Code (--dataset); or write the procedural sample '
                    'dataset in any of their layouts (--sample); and/or fetch the published checkpoints '
                    '(--checkpoints). Safe to rerun: finished steps are skipped. Each option says which '
                    'datasets it applies to.')
    parser.add_argument('--dataset', default='viton', choices=layouts.DATASETS,
                        help='viton (default): VITON, viton_resize.tar.gz from Google Drive; vitonhd: '
                             'VITON-HD, its zip from Google Drive (several GB); dresscode: Dress Code, '
                             'given out on request only: prints how to get it and where to unpack it, '
                             'downloads nothing')
    parser.add_argument('--dataroot', default=None,
                        help='all datasets: the dataset folder (default: '
                             + ', '.join(f'{root} for {name}' for name, root in layouts.DEFAULT_ROOTS.items()) + ')')
    parser.add_argument('--sample', action='store_true',
                        help="all datasets: write the procedural sample dataset in --dataset's layout "
                             'instead (no network, seconds)')
    parser.add_argument('--train', type=int,
                        help=f'--sample, all datasets: number of train persons (default {sample_data.N_TRAIN}; '
                             f'Dress Code: {sample_data.DRESSCODE_N_TRAIN} per category)')
    parser.add_argument('--test', type=int,
                        help=f'--sample, all datasets: number of test persons, >= 2 (default {sample_data.N_TEST}; '
                             f'Dress Code: {sample_data.DRESSCODE_N_TEST} per category)')
    parser.add_argument('--seed', type=int, default=0,
                        help='--sample, all datasets: random seed (same seed, same files)')
    parser.add_argument('--force', action='store_true',
                        help='viton, vitonhd, --sample, --checkpoints: redo finished steps; data in the '
                             'way (but a sample set) is renamed to <name>.old, never deleted')
    parser.add_argument('--url', default=None,
                        help='viton, vitonhd: where the archive comes from: URL or Google Drive file id '
                             "(default: the dataset's official Google Drive file)")
    parser.add_argument('--pairs_url', '--pairs-url', default=None,
                        help="viton only: the original unpaired test_pairs.txt (default: the cp-vton "
                             "repository's)")
    parser.add_argument('--checkpoints', action='store_true',
                        help='any --dataset (they were trained on VITON): download the published GMM '
                             'and TOM checkpoints to <checkpoint_dir>/{gmm,tom}_train_new/{gmm,tom}_final.pth '
                             'and verify them (only the checkpoints, unless --sample is given too)')
    parser.add_argument('--checkpoints_url', '--checkpoints-url', default=CHECKPOINTS_URL,
                        help='--checkpoints: where the checkpoints come from: a zip/tar URL or Google '
                             'Drive file id, or a local zip/tar or folder downloaded in a browser '
                             '(default: the original Drive link)')
    parser.add_argument('--checkpoint_dir', default='checkpoints',
                        help='--checkpoints, --variant cpvton+: the checkpoints folder (default: checkpoints)')
    parser.add_argument('--quiet', action='store_true',
                        help='viton, vitonhd, --checkpoints: no progress bars')
    parser.add_argument('--variant', default='cpvton', choices=list(cp_dataset.VARIANTS),
                        help="viton only: cpvton (default); cpvton+: print where to get CP-VTON+'s "
                             'dataset and checkpoints (OneDrive, no direct link: nothing is downloaded) '
                             'and where to put them; with --sample, write the sample set (it has both '
                             'layouts)')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, datasets in (('url', ('viton', 'vitonhd')), ('pairs_url', ('viton',))):
        if getattr(args, flag) is not None and args.dataset not in datasets:
            parser.error(f'--{flag} applies to --dataset {" or ".join(datasets)} only')
    plus = args.variant == 'cpvton+'
    if plus and args.dataset != 'viton':
        parser.error(f"--variant cpvton+ needs --dataset viton: CP-VTON+'s data (VITON_PLUS) exists only "
                     f'for VITON, not for {args.dataset}')
    args.dataroot = args.dataroot or layouts.DEFAULT_ROOTS[args.dataset]
    for flag in ('dataroot', 'checkpoint_dir'):
        if Path(getattr(args, flag)).exists() and not Path(getattr(args, flag)).is_dir():
            parser.error(f'--{flag} {getattr(args, flag)} is a file, not a folder')
    try:
        if args.sample:
            make_sample_dataset(args.dataroot, args.train, args.test, args.seed, args.force, args.dataset)
        elif args.dataset == 'dresscode' and not args.checkpoints:
            print(dresscode_instructions(args.dataroot))
        elif not args.checkpoints and not plus:
            download_dataset(args.dataroot, args.url, args.pairs_url or PAIRS_URL, args.force, args.quiet,
                             args.dataset)
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
