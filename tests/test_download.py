"""data_download.py against a loopback HTTP server: VITON's and VITON-HD's layout and pairs, unsafe
and damaged archives, being offline, resuming, data in the way, the sample set in each layout and
its guards, the Dress Code instructions, options of another dataset refused, and the checkpoints."""
import argparse
import http.server
import io
import socket
import tarfile
import threading
import time
import zipfile

import pytest

import cp_dataset
import data_download
import layouts
import sample_data


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files {path: bytes}; honours `Range: bytes=N-` if server.ranges."""

    def do_GET(self):
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        requested = self.headers.get('Range')
        if requested:
            self.server.range_requests.append(requested)
        if requested and self.server.ranges:
            start = int(requested.split('=')[1].split('-')[0])
            self.send_response(206)
            self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
        else:
            self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(files, ranges=True) -> (base URL, server); servers stop after the test."""
    servers = []

    def start(files, ranges=True):
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        server.files, server.ranges, server.range_requests = files, ranges, []
        threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
        servers.append(server)
        return f'http://127.0.0.1:{server.server_address[1]}', server
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope='module')
def viton(tmp_path_factory):
    """A tiny viton_resize.tar.gz (2 train, 2 test persons) and its test_pairs.txt."""
    source = tmp_path_factory.mktemp('viton_source')
    sample_data.generate(source, n_train=2, n_test=2, seed=3)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        for split in ('train', 'test'):
            tar.add(source / split, arcname=f'viton_resize/{split}')
    return {'/viton_resize.tar.gz': buffer.getvalue(),
            '/test_pairs.txt': (source / 'test_pairs.txt').read_bytes()}


def _data_args(root, base, *extra, pairs_flag='--pairs_url'):
    return ['--dataroot', str(root), '--url', f'{base}/viton_resize.tar.gz',
            pairs_flag, f'{base}/test_pairs.txt', '--quiet', *extra]


def _user_root(tmp_path):
    """data/ holding one file of the user's."""
    root = tmp_path / 'data'
    root.mkdir()
    (root / 'notes.txt').write_text('mine')
    return root


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


def _opt(root, datamode, data_list):
    return argparse.Namespace(dataroot=str(root), datamode=datamode, data_list=data_list,
                              stage='GMM', fine_height=256, fine_width=192, radius=5)


@pytest.mark.parametrize('pairs_flag', ['--pairs_url', '--pairs-url'])
def test_download_lays_out_viton(tmp_path, serve, viton, capsys, pairs_flag):
    base, server = serve(viton)
    root = _user_root(tmp_path)
    assert data_download.main(_data_args(root, base, pairs_flag=pairs_flag)) == 0
    assert sorted(p.name for p in root.iterdir()) == [
        'notes.txt', 'test', 'test_pairs.txt', 'test_pairs_same.txt', 'train', 'train_pairs.txt']
    assert (root / 'train_pairs.txt').read_text() == '000000_0.jpg 000000_1.jpg\n000001_0.jpg 000001_1.jpg\n'
    assert (root / 'test_pairs_same.txt').read_text() == '100000_0.jpg 100000_1.jpg\n100001_0.jpg 100001_1.jpg\n'
    assert (root / 'test_pairs.txt').read_bytes() == viton['/test_pairs.txt']
    for datamode, data_list in (('train', 'train_pairs.txt'), ('test', 'test_pairs.txt'),
                                ('test', 'test_pairs_same.txt')):
        assert cp_dataset.check_dataset(_opt(root, datamode, data_list)) == []
    # a second run finds everything in place and needs no network
    server.files = {}
    capsys.readouterr()
    assert data_download.main(_data_args(root, base)) == 0
    assert 'already in place' in capsys.readouterr().out


def test_force_keeps_the_previous_download_as_old(tmp_path, serve, viton, capsys):
    base, _ = serve(viton)
    root = _user_root(tmp_path)
    assert data_download.main(_data_args(root, base)) == 0
    (root / 'train' / 'image' / 'extra.jpg').write_bytes(b'mine')
    (root / 'train_pairs.txt').write_text('000001_0.jpg 000001_1.jpg\n')  # edited by the user
    pairs_same = (root / 'test_pairs_same.txt').read_text()
    capsys.readouterr()
    assert data_download.main(_data_args(root, base, '--force')) == 0
    out = capsys.readouterr().out
    assert f'aside to {root / "train.old"}' in out and f'aside to {root / "train_pairs.txt.old"}' in out
    assert (root / 'train.old' / 'image' / 'extra.jpg').read_bytes() == b'mine'
    assert not (root / 'train' / 'image' / 'extra.jpg').exists()
    assert (root / 'train_pairs.txt.old').read_text() == '000001_0.jpg 000001_1.jpg\n'
    assert cp_dataset.read_pairs(root / 'train_pairs.txt') == [('000000_0.jpg', '000000_1.jpg'),
                                                               ('000001_0.jpg', '000001_1.jpg')]
    assert (root / 'test_pairs_same.txt').read_text() == pairs_same  # unchanged: not set aside
    assert not (root / 'test_pairs_same.txt.old').exists()
    # a second --force would need train.old's name: refused before downloading anything
    before = _listing(root)
    assert data_download.main(_data_args(root, 'http://127.0.0.1:1', '--force')) == 1
    error = capsys.readouterr().err
    assert f'{root / "train.old"} already exists' in error and 'Could not download' not in error
    assert _listing(root) == before


def test_download_replaces_a_sample_set(tmp_path, serve, viton, capsys):
    base, _ = serve(viton)
    root = _user_root(tmp_path)
    sample_data.generate(root, n_train=3, n_test=2, seed=1)
    assert data_download.main(_data_args(root, base)) == 0
    assert 'removed the sample dataset' in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == [
        'notes.txt', 'test', 'test_pairs.txt', 'test_pairs_same.txt', 'train', 'train_pairs.txt']
    assert not (root / 'train' / 'image' / '000002_0.jpg').exists()  # the sample's third person
    assert (root / 'test_pairs.txt').read_bytes() == viton['/test_pairs.txt']


def test_incomplete_splits_are_refused_unless_forced(tmp_path, serve, viton, capsys):
    base, _ = serve(viton)
    root = _user_root(tmp_path)
    (root / 'test').mkdir()
    (root / 'test' / 'mine.jpg').write_bytes(b'x')
    assert data_download.main(_data_args(root, base)) == 1
    assert 'not a complete VITON download' in capsys.readouterr().err
    assert _listing(root) == ['notes.txt', 'test', 'test/mine.jpg']
    assert data_download.main(_data_args(root, base, '--force')) == 0
    assert (root / 'test.old' / 'mine.jpg').read_bytes() == b'x'
    assert cp_dataset.check_dataset(_opt(root, 'test', 'test_pairs.txt')) == []


@pytest.mark.parametrize('ranges', [True, False], ids=['resumes', 'restarts'])
def test_interrupted_download_resumes_or_restarts(tmp_path, serve, viton, ranges):
    base, server = serve(viton, ranges=ranges)
    root = _user_root(tmp_path)
    archive = viton['/viton_resize.tar.gz']
    (root / 'viton_resize.tar.gzabcd1234.part').write_bytes(archive[:len(archive) // 3])
    assert data_download.main(_data_args(root, base)) == 0
    assert server.range_requests == [f'bytes={len(archive) // 3}-']
    assert not list(root.glob('*.part')) and not (root / 'viton_resize.tar.gz').exists()
    assert cp_dataset.check_dataset(_opt(root, 'test', 'test_pairs.txt')) == []


def _tar(members):
    """A .tar.gz from (TarInfo, bytes or None) pairs, next to a normal train/ member."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        good = tarfile.TarInfo('viton_resize/train/image/000000_0.jpg')
        good.size = 3
        tar.addfile(good, io.BytesIO(b'jpg'))
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _member(name, kind=tarfile.REGTYPE, target=''):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize('case', ['dotdot', 'absolute', 'symlink', 'hardlink', 'device'])
def test_unsafe_archive_members_are_refused(tmp_path, serve, case, capsys):
    outside = tmp_path / 'outside.txt'
    member, data = {
        'dotdot': (_member('viton_resize/../../outside.txt'), b'evil'),
        'absolute': (_member(str(outside)), b'evil'),
        'symlink': (_member('viton_resize/train/link', tarfile.SYMTYPE, str(outside)), None),
        'hardlink': (_member('viton_resize/train/link', tarfile.LNKTYPE, str(outside)), None),
        'device': (_member('viton_resize/train/null', tarfile.CHRTYPE), None),
    }[case]
    base, _ = serve({'/viton_resize.tar.gz': _tar([(member, data)])})
    root = _user_root(tmp_path)
    assert data_download.main(_data_args(root, base)) == 1
    error = capsys.readouterr().err
    assert f'refusing archive member {member.name!r}' in error
    assert _listing(tmp_path) == ['data', 'data/notes.txt']  # nothing outside, nothing half-done


def test_safe_extract_refuses_zip_escapes(tmp_path):
    archive = tmp_path / 'evil.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('fine/a.txt', 'ok')
        zf.writestr('../escaped.txt', 'evil')
    with pytest.raises(data_download.UnsafeArchive, match=r"'\.\./escaped\.txt'"):
        data_download.safe_extract(archive, tmp_path / 'target')
    assert not (tmp_path / 'escaped.txt').exists()


def test_truncated_archive_leaves_data_as_it_was(tmp_path, serve, viton, capsys):
    archive = viton['/viton_resize.tar.gz']
    base, _ = serve({**viton, '/viton_resize.tar.gz': archive[:len(archive) // 2]})
    root = _user_root(tmp_path)
    assert data_download.main(_data_args(root, base)) == 1
    assert 'damaged or incomplete' in capsys.readouterr().err
    assert _listing(root) == ['notes.txt']


def _unused_url():
    """A URL on a local port nothing listens on: a download from it fails at once, as offline."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return f'http://127.0.0.1:{sock.getsockname()[1]}'


def test_offline_fails_fast_and_points_to_sample(tmp_path, capsys):
    root = _user_root(tmp_path)
    start = time.monotonic()
    assert data_download.main(_data_args(root, _unused_url())) == 1
    assert time.monotonic() - start < 10
    error = capsys.readouterr().err
    assert 'Could not download the VITON dataset' in error and '--sample' in error
    assert _listing(root) == ['notes.txt']


def test_missing_test_pairs_is_reported_then_fetched(tmp_path, serve, viton, capsys):
    base, server = serve({'/viton_resize.tar.gz': viton['/viton_resize.tar.gz']})
    root = _user_root(tmp_path)
    assert data_download.main(_data_args(root, base)) == 1
    assert 'Could not fetch the original test_pairs.txt' in capsys.readouterr().err
    assert (root / 'train_pairs.txt').exists() and (root / 'test_pairs_same.txt').exists()
    assert not (root / 'test_pairs.txt').exists()
    server.files = {'/test_pairs.txt': viton['/test_pairs.txt']}  # the archive is not asked again
    assert data_download.main(_data_args(root, base)) == 0
    assert (root / 'test_pairs.txt').read_bytes() == viton['/test_pairs.txt']


def test_sample_option(tmp_path, capsys):
    root = _user_root(tmp_path)
    args = ['--sample', '--dataroot', str(root), '--train', '3', '--test', '2']
    assert data_download.main(args) == 0
    assert cp_dataset.check_dataset(_opt(root, 'train', 'train_pairs.txt')) == []
    capsys.readouterr()
    assert data_download.main(args) == 0
    assert 'already' in capsys.readouterr().out
    assert data_download.main(['--sample', '--dataroot', str(root), '--train', '2', '--test', '2']) == 0
    assert not (root / 'train' / 'image' / '000002_0.jpg').exists()  # the earlier set was replaced
    assert (root / 'notes.txt').read_text() == 'mine'


def test_sample_refuses_to_overwrite_real_data(tmp_path, capsys):
    root = _user_root(tmp_path)
    (root / 'train').mkdir()
    (root / 'train' / 'mine.jpg').write_bytes(b'x')
    args = ['--sample', '--dataroot', str(root), '--train', '2', '--test', '2']
    assert data_download.main(args) == 1
    assert '--force' in capsys.readouterr().err
    assert _listing(root) == ['notes.txt', 'train', 'train/mine.jpg']
    assert data_download.main(args + ['--force']) == 0
    assert (root / 'train.old' / 'mine.jpg').exists()
    assert cp_dataset.check_dataset(_opt(root, 'test', 'test_pairs.txt')) == []


@pytest.fixture(scope='module')
def checkpoints_zip():
    """A zip of zero-valued GMM and TOM state dicts laid out like the published folder."""
    import torch
    import networks

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for stage, (sub, name) in data_download.CHECKPOINTS.items():
            state = {k: torch.zeros_like(v) for k, v in networks.build_model(stage).state_dict().items()}
            with zf.open(f'cp-vton-checkpoints/{sub}/{name}', 'w', force_zip64=True) as f:
                torch.save(state, f)
    return buffer.getvalue()


CHECKPOINT_FILES = ['gmm_train_new', 'gmm_train_new/gmm_final.pth', 'tom_train_new', 'tom_train_new/tom_final.pth']


def test_checkpoints_are_placed_and_verified(tmp_path, serve, checkpoints_zip, capsys):
    base, _ = serve({'/checkpoints.zip': checkpoints_zip})
    folder = tmp_path / 'checkpoints'
    args = ['--checkpoints', '--checkpoint_dir', str(folder), '--checkpoints-url',
            f'{base}/checkpoints.zip', '--quiet']
    assert data_download.main(args) == 0
    assert _listing(folder) == CHECKPOINT_FILES
    assert 'loads as the TOM network' in capsys.readouterr().out
    # --force downloads them again and keeps the previous ones as <name>.old
    assert data_download.main(args + ['--force']) == 0
    assert _listing(folder) == sorted(CHECKPOINT_FILES + ['gmm_train_new/gmm_final.pth.old',
                                                          'tom_train_new/tom_final.pth.old'])


@pytest.mark.parametrize('kind', ['zip', 'folder'])
def test_checkpoints_from_a_local_zip_or_folder(tmp_path, checkpoints_zip, kind, capsys):
    source = tmp_path / 'download.zip'
    source.write_bytes(checkpoints_zip)
    if kind == 'folder':
        with zipfile.ZipFile(source) as zf:
            zf.extractall(tmp_path / 'download')
        source = tmp_path / 'download'
    folder = tmp_path / 'checkpoints'
    assert data_download.main(['--checkpoints', '--checkpoint_dir', str(folder),
                               '--checkpoints_url', str(source), '--quiet']) == 0
    assert _listing(folder) == CHECKPOINT_FILES
    assert source.exists()  # the user's download is left as it was
    capsys.readouterr()
    assert data_download.main(['--checkpoints', '--checkpoint_dir', str(folder), '--checkpoints_url',
                               str(tmp_path / 'missing.zip'), '--quiet']) == 0  # in place: not fetched
    assert capsys.readouterr().out.count('already in place') == 2


def test_checkpoint_of_the_wrong_stage_is_refused(tmp_path, serve, checkpoints_zip, capsys):
    swapped = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(checkpoints_zip)) as src, zipfile.ZipFile(swapped, 'w') as dst:
        for info in src.infolist():  # TOM's weights under GMM's name and vice versa
            name = info.filename.replace('gmm', 'TMP').replace('tom', 'gmm').replace('TMP', 'tom')
            dst.writestr(name, src.read(info))
    base, _ = serve({'/checkpoints.zip': swapped.getvalue()})
    folder = tmp_path / 'checkpoints'
    assert data_download.main(['--checkpoints', '--checkpoint_dir', str(folder), '--checkpoints_url',
                               f'{base}/checkpoints.zip', '--quiet']) == 1
    assert 'is not a GMM checkpoint' in capsys.readouterr().err
    assert _listing(folder) == []


@pytest.mark.parametrize('case', ['not_an_archive', 'offline'])
def test_checkpoints_link_failing_points_to_a_browser_download(tmp_path, serve, case, capsys):
    base, _ = serve({'/folder': b'<html>a Google Drive folder page</html>'})
    url = f'{base}/folder' if case == 'not_an_archive' else 'http://127.0.0.1:1/checkpoints.zip'
    folder = tmp_path / 'checkpoints'
    assert data_download.main(['--checkpoints', '--checkpoint_dir', str(folder), '--checkpoints_url', url,
                               '--quiet']) == 1
    error = capsys.readouterr().err
    assert 'in a browser' in error and '--checkpoints_url PATH' in error
    assert _listing(folder) == []


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        data_download.main(['--help'])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert '--pairs_url PAIRS_URL, --pairs-url PAIRS_URL' in out and '--checkpoints_url' in out


@pytest.mark.parametrize('extra', [[], ['--checkpoints']])
def test_cpvton_plus_prints_where_to_get_its_files(tmp_path, capsys, extra):
    root, checkpoints = tmp_path / 'data', tmp_path / 'ckpt'
    assert data_download.main(['--variant', 'cpvton+', '--dataroot', str(root),
                               '--checkpoint_dir', str(checkpoints), *extra]) == 0
    out = capsys.readouterr().out
    for text in (data_download.PLUS_DATA_URL, data_download.PLUS_CHECKPOINTS_URL,
                 data_download.PLUS_REPOSITORY,
                 f'{root}/train/image-parse-new/', f'{root}/train/image-mask/',
                 f'{checkpoints}/gmm_train_plus/gmm_final.pth', f'{checkpoints}/tom_train_plus/tom_final.pth',
                 f'python cp_dataset.py --check --variant cpvton+ --dataroot {root} --datamode train '
                 '--data_list train_pairs.txt'):
        assert text in out, text
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cpvton_plus_sample_has_both_layouts(tmp_path, capsys):
    root = tmp_path / 'data'
    assert data_download.main(['--variant', 'cpvton+', '--sample', '--dataroot', str(root),
                               '--train', '2', '--test', '2']) == 0
    assert 'OneDrive' not in capsys.readouterr().out
    for variant in cp_dataset.VARIANTS:
        assert cp_dataset.check_dataset(dataroot=str(root), datamode='train', data_list='train_pairs.txt',
                                        variant=variant) == []


# ----------------------------------------------------------------------------------------
# VITON-HD: its zip from a loopback server; Dress Code: instructions only

HD_IDS = {'train': ('00000_00', '00001_00'), 'test': ('00002_00', '00003_00', '00004_00')}
HD_TRAIN_PAIRS = b'00000_00.jpg 00001_00.jpg\n00001_00.jpg 00000_00.jpg\n'
HD_TEST_PAIRS = b'00002_00.jpg 00004_00.jpg\n00004_00.jpg 00002_00.jpg\n'
HD_ROOT_NAMES = ['notes.txt', 'test', 'test_pairs.txt', 'test_pairs_same.txt', 'train', 'train_pairs.txt']


def _vitonhd_files(old_names=False):
    """{path: bytes} of a tiny VITON-HD; test person 00003_00 has no garment of her name, and the
    garment 00099_00 no person."""
    parse, pose = ('image-parse', 'openpose-json') if old_names else ('image-parse-v3', 'openpose_json')
    files = {'train_pairs.txt': HD_TRAIN_PAIRS, 'test_pairs.txt': HD_TEST_PAIRS,
             'test/cloth/00099_00.jpg': b'jpg', 'test/cloth-mask/00099_00.jpg': b'jpg'}
    for split, ids in HD_IDS.items():
        for n in ids:
            files.update({f'{split}/image/{n}.jpg': b'jpg', f'{split}/{parse}/{n}.png': b'png',
                          f'{split}/{pose}/{n}_keypoints.json': b'{}'})
            if n != '00003_00':
                files.update({f'{split}/cloth/{n}.jpg': b'jpg', f'{split}/cloth-mask/{n}.jpg': b'jpg'})
    return files


def _zip(files, top=''):
    """A zip of {path: bytes}, each path under `top`/ if given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as zf:
        for name, data in files.items():
            zf.writestr(f'{top}/{name}' if top else name, data)
    return buffer.getvalue()


def _hd_args(root, base, *extra):
    return ['--dataset', 'vitonhd', '--dataroot', str(root), '--url', f'{base}/hd.zip', '--quiet', *extra]


@pytest.mark.parametrize('top, old_names', [('zalando-hd-resized', False), ('', True)],
                         ids=['top-folder-new-names', 'no-top-folder-old-names'])
def test_vitonhd_download_lays_out_the_zip(tmp_path, serve, capsys, monkeypatch, top, old_names):
    files = _vitonhd_files(old_names)
    base, server = serve({'/hd.zip': _zip(files, top)})
    monkeypatch.chdir(tmp_path)
    root = tmp_path / 'data' / 'zalando-hd-resized'  # the default --dataroot
    root.mkdir(parents=True)
    (root / 'notes.txt').write_text('mine')
    assert data_download.main(['--dataset', 'vitonhd', '--url', f'{base}/hd.zip', '--quiet']) == 0
    assert sorted(p.name for p in root.iterdir()) == HD_ROOT_NAMES  # no zip, no temporary folder
    assert sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()) == sorted(
        ['notes.txt', 'test_pairs_same.txt', *files])
    assert (root / 'train_pairs.txt').read_bytes() == HD_TRAIN_PAIRS
    assert (root / 'test_pairs.txt').read_bytes() == HD_TEST_PAIRS
    assert (root / 'test_pairs_same.txt').read_text() == '00002_00.jpg 00002_00.jpg\n00004_00.jpg 00004_00.jpg\n'
    # a second run finds everything in place and needs no network
    server.files = {}
    (root / 'test_pairs_same.txt').unlink()
    capsys.readouterr()
    assert data_download.main(['--dataset', 'vitonhd', '--url', f'{base}/hd.zip', '--quiet']) == 0
    assert 'VITON-HD is already in place' in capsys.readouterr().out
    assert (root / 'test_pairs_same.txt').read_text() == '00002_00.jpg 00002_00.jpg\n00004_00.jpg 00004_00.jpg\n'


def test_vitonhd_interrupted_download_resumes(tmp_path, serve):
    archive = _zip(_vitonhd_files(), 'zalando-hd-resized')
    base, server = serve({'/hd.zip': archive})
    root = _user_root(tmp_path)
    (root / 'zalando-hd-resized.zipabcd1234.part').write_bytes(archive[:len(archive) // 3])
    assert data_download.main(_hd_args(root, base)) == 0
    assert server.range_requests == [f'bytes={len(archive) // 3}-']
    assert sorted(p.name for p in root.iterdir()) == HD_ROOT_NAMES
    assert (root / 'test' / 'image' / '00004_00.jpg').read_bytes() == b'jpg'


@pytest.mark.parametrize('case', ['unsafe', 'missing_folders', 'no_pairs', 'damaged'])
def test_vitonhd_bad_zip_leaves_data_as_it_was(tmp_path, serve, capsys, case):
    files = _vitonhd_files()
    if case == 'missing_folders':
        files = {k: v for k, v in files.items() if not k.startswith(('test/openpose_json/', 'train/cloth-mask/'))}
    if case == 'no_pairs':
        del files['train_pairs.txt']
    archive = _zip(files, 'zalando-hd-resized')
    if case == 'unsafe':
        archive = _zip({**files, '../escaped.txt': b'evil'})
    if case == 'damaged':
        archive = archive[:len(archive) // 2]
    base, _ = serve({'/hd.zip': archive})
    root = _user_root(tmp_path)
    assert data_download.main(_hd_args(root, base)) == 1
    error = capsys.readouterr().err
    expected = {'unsafe': "refusing archive member '../escaped.txt'",
                'missing_folders': 'not in the VITON-HD layout: it lacks zalando-hd-resized/train/cloth-mask/, '
                                   'zalando-hd-resized/test/openpose_json/ (or openpose-json/)',
                'no_pairs': 'no folder with train_pairs.txt, test_pairs.txt, train/ and test/',
                'damaged': 'damaged or incomplete'}[case]
    assert expected in error and 'deleted the download' in error
    assert _listing(tmp_path) == ['data', 'data/notes.txt']  # nothing outside, nothing half-done


def test_vitonhd_offline_fails_fast_and_points_to_its_sample(tmp_path, capsys):
    root = _user_root(tmp_path)
    start = time.monotonic()
    assert data_download.main(_hd_args(root, _unused_url())) == 1
    assert time.monotonic() - start < 10
    error = capsys.readouterr().err
    assert 'Could not download the VITON-HD dataset (zalando-hd-resized.zip)' in error
    assert f'save it as {root / "zalando-hd-resized.zip"}' in error
    assert 'python data_download.py --sample --dataset vitonhd' in error
    assert _listing(root) == ['notes.txt']


def test_vitonhd_data_in_the_way_is_refused_unless_forced(tmp_path, serve, capsys):
    base, server = serve({})  # refused before anything is asked of the server
    root = _user_root(tmp_path)
    (root / 'train').mkdir()
    (root / 'train' / 'mine.jpg').write_bytes(b'x')
    (root / 'test_pairs.txt').write_text('mine.jpg mine.jpg\n')
    assert data_download.main(_hd_args(root, base)) == 1
    error = capsys.readouterr().err
    assert (f'{root / "train"}, {root / "test_pairs.txt"} already exist but are not a complete '
            'VITON-HD download') in error
    assert _listing(root) == ['notes.txt', 'test_pairs.txt', 'train', 'train/mine.jpg']
    server.files = {'/hd.zip': _zip(_vitonhd_files(), 'zalando-hd-resized')}
    assert data_download.main(_hd_args(root, base, '--force')) == 0
    assert (root / 'train.old' / 'mine.jpg').read_bytes() == b'x'
    assert (root / 'test_pairs.txt.old').read_text() == 'mine.jpg mine.jpg\n'
    assert (root / 'test_pairs.txt').read_bytes() == HD_TEST_PAIRS
    assert sorted(p.name for p in root.iterdir()) == sorted(HD_ROOT_NAMES + ['test_pairs.txt.old', 'train.old'])


def test_dresscode_prints_how_to_request_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_download.main(['--dataset', 'dresscode']) == 0
    out = capsys.readouterr().out
    for text in ('https://forms.gle/72Bpeh48P7zQimin7', 'https://github.com/aimagelab/dress-code',
                 'institutional e-mail', 'signed by hand', 'weekly',
                 'data/DressCode/{train_pairs.txt,test_pairs_paired.txt,test_pairs_unpaired.txt}',
                 'data/DressCode/{upper_body,lower_body,dresses}/images/',
                 'data/DressCode/{upper_body,lower_body,dresses}/keypoints/',
                 'data/DressCode/{upper_body,lower_body,dresses}/label_maps/',
                 'dresscode_masks.zip', 'data/DressCode/<category>/masks/NNNNNN_1.png',
                 'data/DressCode/<category>/cloth-mask/',
                 'python cp_dataset.py --check --dataset dresscode --category upper_body --datamode train '
                 '--data_list train_pairs.txt'):
        assert text in out, text
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing downloaded
    assert data_download.main(['--dataset', 'dresscode', '--dataroot', 'dc']) == 0
    assert 'python cp_dataset.py --check --dataset dresscode --dataroot dc --category' in capsys.readouterr().out


PLUS_REFUSED = "CP-VTON+'s data (VITON_PLUS) exists only for VITON"


@pytest.mark.parametrize('args, message', [
    (['--dataset', 'vitonhd', '--variant', 'cpvton+'], PLUS_REFUSED),
    (['--dataset', 'dresscode', '--variant', 'cpvton+', '--sample'], PLUS_REFUSED),
    (['--dataset', 'dresscode', '--url', 'http://127.0.0.1:1/x.zip'], '--url applies to --dataset viton or vitonhd'),
    (['--dataset', 'vitonhd', '--pairs_url', 'http://127.0.0.1:1/p.txt'], '--pairs_url applies to --dataset viton'),
])
def test_options_of_another_dataset_are_refused(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        data_download.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_every_option_says_which_datasets_it_applies_to():
    scopes = ('all datasets', 'any --dataset', 'viton', '--sample, all datasets', '--checkpoints')
    options = [a for a in data_download.build_parser()._actions if a.dest != 'help']
    assert len(options) == 14
    for action in options:
        assert action.help.startswith(scopes), action.option_strings


def test_vitonhd_extra_content_in_the_way_keeps_the_download(tmp_path, serve, capsys):
    base, server = serve({'/hd.zip': _zip({**_vitonhd_files(), 'README.txt': b'theirs'}, 'zalando-hd-resized')})
    root = _user_root(tmp_path)
    (root / 'README.txt').write_text('mine')  # known only once the zip is open
    assert data_download.main(_hd_args(root, base)) == 1
    error = capsys.readouterr().err
    assert 'README.txt already exist but are not a complete VITON-HD download' in error
    assert f'The download is kept as {root / "zalando-hd-resized.zip"} for the next run' in error
    assert _listing(root) == ['README.txt', 'notes.txt', 'zalando-hd-resized.zip']
    server.files = {}  # the kept zip is used
    assert data_download.main(_hd_args(root, base, '--force')) == 0
    assert (root / 'README.txt.old').read_text() == 'mine' and (root / 'README.txt').read_text() == 'theirs'
    assert 'kept' in capsys.readouterr().out and (root / 'zalando-hd-resized.zip').exists()


def _check(root, dataset, data_list, category=None):
    return cp_dataset.check_dataset(dataroot=str(root), datamode='train' if 'train' in data_list else 'test',
                                    data_list=data_list, dataset=dataset, category=category)


def test_sample_in_the_vitonhd_layout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / 'data' / 'zalando-hd-resized'  # the default --dataroot
    args = ['--sample', '--dataset', 'vitonhd', '--train', '4', '--test', '2']
    assert data_download.main(args) == 0
    assert sorted(p.name for p in root.iterdir()) == [
        '.sample_dataset', 'test', 'test_pairs.txt', 'test_pairs_same.txt', 'train', 'train_pairs.txt']
    assert (root / 'test_pairs_same.txt').read_text() == '50000_00.jpg 50000_00.jpg\n50001_00.jpg 50001_00.jpg\n'
    for data_list in ('train_pairs.txt', 'test_pairs.txt', 'test_pairs_same.txt'):
        assert _check(root, 'vitonhd', data_list) == [], data_list
    capsys.readouterr()
    assert data_download.main(args) == 0
    assert 'already' in capsys.readouterr().out
    # another size replaces the set, its test_pairs_same.txt too
    assert data_download.main(['--sample', '--dataset', 'vitonhd', '--train', '2', '--test', '3']) == 0
    assert cp_dataset.read_pairs(root / 'test_pairs_same.txt') == [(f'5000{i}_00.jpg',) * 2 for i in range(3)]
    assert not (root / 'train' / 'image' / '00003_00.jpg').exists()
    assert not list(root.glob('*.old'))


def test_sample_in_the_dresscode_layout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / 'data' / 'DressCode'  # the default --dataroot
    assert data_download.main(['--sample', '--dataset', 'dresscode', '--train', '4', '--test', '2']) == 0
    assert sorted(p.name for p in root.iterdir()) == sorted(['.sample_dataset', *layouts.CATEGORIES,
                                                             *data_download.DRESSCODE_PAIRS])
    for category in layouts.CATEGORIES:
        for data_list in ('train_pairs.txt', 'test_pairs_paired.txt', 'test_pairs_unpaired.txt'):
            assert _check(root, 'dresscode', data_list, category) == [], (category, data_list)


@pytest.mark.parametrize('dataset, mine', [('vitonhd', 'train'), ('vitonhd', 'test_pairs_same.txt'),
                                           ('dresscode', 'upper_body'), ('dresscode', 'train_pairs.txt')])
def test_sample_refuses_to_overwrite_real_data_of_other_layouts(tmp_path, capsys, dataset, mine):
    root = _user_root(tmp_path)
    (root / mine).write_text('mine') if mine.endswith('.txt') else (root / mine).mkdir()
    args = ['--sample', '--dataset', dataset, '--dataroot', str(root), '--train', '2', '--test', '2']
    assert data_download.main(args) == 1
    error = capsys.readouterr().err
    assert f'already holds a dataset ({mine})' in error and '--force' in error
    assert _listing(root) == sorted(['notes.txt', mine])
    assert data_download.main(args + ['--force']) == 0
    assert (root / f'{mine}.old').exists() and (root / mine).exists()


def test_vitonhd_download_replaces_a_vitonhd_sample(tmp_path, serve, capsys):
    base, _ = serve({'/hd.zip': _zip(_vitonhd_files(), 'zalando-hd-resized')})
    root = _user_root(tmp_path)
    assert data_download.main(['--sample', '--dataset', 'vitonhd', '--dataroot', str(root),
                               '--train', '2', '--test', '2']) == 0
    assert data_download.main(_hd_args(root, base)) == 0
    assert 'removed the sample dataset' in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == HD_ROOT_NAMES
    assert not (root / 'test' / 'image' / '50000_00.jpg').exists()
    assert (root / 'test_pairs_same.txt').read_text() == '00002_00.jpg 00002_00.jpg\n00004_00.jpg 00004_00.jpg\n'


def test_sample_of_another_layout_is_replaced(tmp_path, capsys):
    root = tmp_path / 'data'
    args = ['--sample', '--dataroot', str(root), '--train', '2', '--test', '2']
    assert data_download.main(args) == 0
    assert data_download.main(args + ['--dataset', 'vitonhd']) == 0  # same counts, another layout
    assert 'removed the previous sample dataset' in capsys.readouterr().out
    assert (root / 'test' / 'image' / '50000_00.jpg').exists()
    assert not (root / 'test' / 'image' / '100000_0.jpg').exists() and not (root / 'test' / 'pose').exists()
