"""data_download.py against a loopback HTTP server: layout and pairs, unsafe and damaged
archives, being offline, resuming, the sample set's guards, and the checkpoints."""
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


def test_offline_fails_fast_and_points_to_sample(tmp_path, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    root = _user_root(tmp_path)
    start = time.monotonic()
    assert data_download.main(_data_args(root, f'http://127.0.0.1:{port}')) == 1
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
