"""evaluate.py: metrics on known answers, identity-warp results, metrics.json, missing weights/results."""
import json
import math
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
import torchvision

import evaluate


def read_pairs(root, name):
    with open(osp.join(root, name)) as f:
        return [line.split() for line in f if line.strip()]


def copy_files(src_dir, dst_dir, names):
    dst_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(osp.join(src_dir, name), dst_dir / name)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A torch hub cache with no weights in it, so LPIPS/IS must be skipped (and nothing downloaded)."""
    hub = tmp_path / 'hub'
    hub.mkdir()
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    return hub


@pytest.fixture
def identity_results(sample_root, tmp_path):
    """result/<ckpt>/test/ holding the dataset's own cloth as 'warps' and the person as 'try-on'."""
    pairs = read_pairs(sample_root, 'test_pairs_same.txt')
    gmm = tmp_path / 'result' / 'gmm_final.pth' / 'test'
    tom = tmp_path / 'result' / 'tom_final.pth' / 'test'
    data = osp.join(sample_root, 'test')
    copy_files(osp.join(data, 'cloth'), gmm / 'warp-cloth', [c for _, c in pairs])
    copy_files(osp.join(data, 'cloth-mask'), gmm / 'warp-mask', [c for _, c in pairs])
    copy_files(osp.join(data, 'image'), tom / 'try-on', [im for im, _ in pairs])
    return gmm, tom


def run(sample_root, result_dir, *extra):
    return evaluate.main(['--dataroot', str(sample_root), '--datamode', 'test', '--device', 'cpu',
                          '--result_dir', str(result_dir), *extra])


def test_metrics_known_answers():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    assert evaluate.ssim(image, image) == pytest.approx(1.0)
    assert evaluate.ssim(image[..., 0], image[..., 0]) == pytest.approx(1.0)
    assert evaluate.ssim(image, 255 - image) < 0.5

    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :2] = True          # cells (0,0), (0,1)
    b[0, 1:3] = True         # cells (0,1), (0,2): one shared cell, three in the union
    assert evaluate.mask_iou(a, a) == 1.0
    assert evaluate.mask_iou(a, b) == pytest.approx(1 / 3)
    assert evaluate.mask_iou(a, ~a) == 0.0
    assert evaluate.mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0  # documented

    grey = np.full((32, 24, 3), 100, np.uint8)
    for d in (1, 5, 40):
        assert evaluate.psnr(grey, grey + d) == pytest.approx(20 * math.log10(255 / d))
        assert evaluate.l1(grey, grey + d) == pytest.approx(d / 255)
    assert evaluate.psnr(grey, grey) == math.inf


def test_inception_score_known_answers():
    assert evaluate.inception_score(np.full((20, 10), 0.1), splits=2) == pytest.approx((1.0, 0.0))
    one_hot = np.eye(8)  # every image a confident, different class: IS = number of classes seen
    assert evaluate.inception_score(one_hot, splits=1)[0] == pytest.approx(8.0)


def test_identity_warp_equals_baseline_and_perfect_tryon(sample_root, identity_results, empty_hub, capsys):
    gmm, tom = identity_results
    results = run(sample_root, gmm.parent.parent)  # --stage auto finds both folders
    assert set(results) == {str(gmm), str(tom)}

    g = results[str(gmm)]['GMM']
    assert g['paired'] and g['count'] == len(read_pairs(sample_root, 'test_pairs_same.txt'))
    assert g['metrics'] == g['baseline']  # the "warps" are the unwarped cloth
    assert 0 <= g['metrics']['iou']['mean'] <= 1 and -1 <= g['metrics']['ssim']['mean'] <= 1

    t = results[str(tom)]['TOM']
    assert t['metrics']['ssim']['mean'] == pytest.approx(1.0)
    assert t['metrics']['psnr'] == {'mean': evaluate.PSNR_CAP, 'std': 0.0}
    assert t['metrics']['l1']['mean'] == 0.0
    assert 'lpips' not in t['metrics']
    expected = osp.join(str(empty_hub), 'checkpoints', evaluate.ALEXNET_FILE)
    assert t['skipped']['lpips'].startswith(f'LPIPS skipped: AlexNet weights not found at {expected}')
    out = capsys.readouterr().out
    assert 'LPIPS skipped' in out and 'IoU' in out and '0.7898' in out

    for folder, stage, keys in ((gmm, 'GMM', {'iou', 'ssim'}), (tom, 'TOM', {'ssim', 'psnr', 'l1'})):
        with open(folder / 'metrics.json') as f:
            saved = json.load(f)[stage]['test_pairs_same.txt']
        assert set(saved['metrics']) == keys
        assert {'result', 'settings', 'count', 'paired', 'skipped'} <= set(saved)
        assert saved['settings']['data_list'] == 'test_pairs_same.txt'
        numbers = [v for m in saved['metrics'].values() for v in m.values()]
        assert all(isinstance(v, float) and math.isfinite(v) for v in numbers)
    assert saved['metrics']['psnr']['mean'] == evaluate.PSNR_CAP


def test_lpips_with_local_weights(sample_root, identity_results, tmp_path, monkeypatch):
    """A (random) AlexNet weight file in the hub cache is loaded, not downloaded; LPIPS(x, x) = 0."""
    hub = tmp_path / 'hub_with_alexnet'
    (hub / 'checkpoints').mkdir(parents=True)
    features = torchvision.models.alexnet().features.state_dict()
    torch.save({f'features.{k}': v for k, v in features.items()}, hub / 'checkpoints' / evaluate.ALEXNET_FILE)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    _, tom = identity_results
    t = run(sample_root, tmp_path, '--stage', 'TOM', '--tom_result', str(tom))[str(tom)]['TOM']
    assert t['metrics']['lpips']['mean'] == pytest.approx(0.0, abs=1e-6)
    assert 'lpips' not in t['skipped']


def test_unpaired_list_reports_count_and_is(sample_root, tmp_path, empty_hub, monkeypatch):
    pairs = read_pairs(sample_root, 'test_pairs.txt')
    tom = tmp_path / 'result' / 'tom_final.pth' / 'test'
    copy_files(osp.join(sample_root, 'test', 'image'), tom / 'try-on', [im for im, _ in pairs])
    t = run(sample_root, tmp_path / 'result', '--data_list', 'test_pairs.txt')[str(tom)]['TOM']
    assert not t['paired'] and t['count'] == len(pairs) and t['metrics'] == {}
    assert t['skipped']['is'].startswith('IS skipped: Inception weights not found at')

    class TinyClassifier(torch.nn.Module):  # stands in for Inception-v3 (whose weights are not here)
        def forward(self, x):
            assert x.shape[1:] == (3, 299, 299)
            return x.mean(dim=(2, 3)) * 10

    monkeypatch.setattr(evaluate, 'load_inception', lambda path, device: (TinyClassifier(), None))
    t = run(sample_root, tmp_path / 'result', '--data_list', 'test_pairs.txt')[str(tom)]['TOM']
    assert math.isfinite(t['metrics']['is']['mean']) and t['metrics']['is']['mean'] >= 1.0


def test_missing_results_are_named(sample_root, identity_results, tmp_path):
    with pytest.raises(FileNotFoundError, match='run test.py first'):
        run(sample_root, tmp_path / 'nothing_here')
    gmm, _ = identity_results
    missing = sorted((gmm / 'warp-mask').iterdir())[0]
    missing.unlink()
    with pytest.raises(FileNotFoundError, match='run test.py first') as err:
        run(sample_root, tmp_path, '--stage', 'GMM', '--gmm_result', str(gmm))
    assert str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError, match='result folder not found'):
        run(sample_root, tmp_path, '--tom_result', str(tmp_path / 'no_such_folder'))
