"""evaluate.py: metrics on known answers, identity-warp results, metrics.json, missing weights/results."""
import json
import math
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image
import scipy.linalg
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
import torchvision

import data_download
import evaluate
from cp_dataset import CLOTH_LABELS, CPDataset


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt to fetch weights fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f'download attempted: {args}')
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    monkeypatch.setattr(fidelity_inception, 'load_state_dict_from_url', refuse)


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


# ---------------------------------------------------------------------------------------------
# FID and KID

class MeanColour(torch.nn.Module):
    """Stand-in feature extractor: an image's mean RGB (3-d features)."""
    def forward(self, x):
        return x.float().mean(dim=(2, 3))


class RandomProjection(torch.nn.Module):
    """Stand-in feature extractor: a fixed random linear map of the 4x4-average-pooled image."""
    def __init__(self, in_features, out_features=5):
        super().__init__()
        self.weight = torch.randn(in_features, out_features, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x.float() / 255, 4).flatten(1) @ self.weight


class Lookup(torch.nn.Module):
    """Stand-in feature extractor returning given features: image i is 1x1 with pixel (i // 256, i % 256, 0)."""
    def __init__(self, table):
        super().__init__()
        self.table = torch.as_tensor(table)

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long() * 256 + x[:, 1, 0, 0].long()]


def index_images(start, count):
    return [np.array([[[i // 256, i % 256, 0]]], np.uint8) for i in range(start, start + count)]


def frechet(a, b):
    """Exact Frechet distance of the Gaussians fitted to two samples (sample covariance, ddof 1)."""
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))


def kid_whole_sets(a, b):
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3, on all of two equal-size sets."""
    kernel = lambda x, y: (x @ y.T / x.shape[1] + 1) ** 3  # noqa: E731
    m = len(a)
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    return float((kaa.sum() - np.trace(kaa) + kbb.sum() - np.trace(kbb)) / (m * (m - 1)) - 2 * kab.mean())


def test_fid_kid_identical_sets():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 12, 3), dtype=np.uint8) for _ in range(30)]
    extractor = RandomProjection(3 * 4 * 3)
    out = evaluate.fid_kid(images, images, extractor)
    assert out['fid']['value'] == pytest.approx(0.0, abs=1e-6)
    # 30 < KID_SUBSET_SIZE: every subset is the whole set, so KID is the whole-set estimate, std 0
    features = np.concatenate([extractor(evaluate.to_uint8(im, 'cpu')).numpy() for im in images]).astype(np.float64)
    assert out['kid']['mean'] == pytest.approx(kid_whole_sets(features, features), rel=1e-9, abs=1e-12)
    assert out['kid']['std'] == pytest.approx(0.0, abs=1e-12)
    assert abs(out['kid']['mean']) < 0.1 * abs(kid_whole_sets(features, features[::-1] * 2))


def test_fid_kid_two_gaussians():
    """Features from N(m1, I) and N(m2, I): FID is the exact Frechet distance of the two samples, close
    to |m1 - m2|^2 (the distance of the Gaussians, equal covariances); KID is the whole-set estimate."""
    rng = np.random.default_rng(1)
    n, m1, m2 = 10000, np.zeros(4), np.array([1.0, -1.0, 0.5, 0.0])
    features = np.concatenate([rng.normal(m1, 1, (n, 4)), rng.normal(m2, 1, (n, 4))])
    out = evaluate.fid_kid(index_images(0, n), index_images(n, n), Lookup(features))
    real, fake = features[:n], features[n:]
    assert out['fid']['value'] == pytest.approx(frechet(real, fake), rel=1e-6)
    assert out['fid']['value'] == pytest.approx(((m1 - m2) ** 2).sum(), abs=0.15)
    # KID over 100 subsets of 1000: an unbiased estimate of the MMD^2 that 2000 of each estimate too
    assert out['kid']['mean'] == pytest.approx(kid_whole_sets(real[:2000], fake[:2000]), rel=0.05)


def test_kid_subsets_when_more_than_subset_size(monkeypatch):
    monkeypatch.setattr(evaluate, 'KID_SUBSETS', 5)
    monkeypatch.setattr(evaluate, 'KID_SUBSET_SIZE', 20)
    features = np.random.default_rng(2).normal(0, 1, (100, 3))
    first = evaluate.fid_kid(index_images(0, 50), index_images(50, 50), Lookup(features))
    again = evaluate.fid_kid(index_images(0, 50), index_images(50, 50), Lookup(features))
    assert first == again  # the subsets are drawn with a fixed seed
    assert first['kid']['std'] > 0


def test_fid_kid_skipped_without_weights(sample_root, tmp_path, empty_hub):
    pairs = read_pairs(sample_root, 'test_pairs.txt')
    tom = tmp_path / 'tom'
    copy_files(osp.join(sample_root, 'test', 'image'), tom / 'try-on', [im for im, _ in pairs])
    t = run(sample_root, tmp_path, '--data_list', 'test_pairs.txt', '--tom_result', str(tom))[str(tom)]['TOM']
    expected = osp.join(str(empty_hub), 'checkpoints', evaluate.FID_INCEPTION_FILE)
    assert t['skipped']['fid/kid'].startswith(f'FID/KID skipped: Inception weights not found at {expected}; ')
    assert 'fid' not in t['metrics'] and 'kid' not in t['metrics']
    assert list((empty_hub).rglob('*')) == []  # nothing downloaded into the hub cache


def test_unpaired_fid_kid_rows(sample_root, tmp_path, empty_hub, monkeypatch, capsys):
    """Try-ons that are the persons' own images: FID 0; the table prints FID and KID with '-' published."""
    pairs = read_pairs(sample_root, 'test_pairs.txt')
    tom = tmp_path / 'tom'
    copy_files(osp.join(sample_root, 'test', 'image'), tom / 'try-on', [im for im, _ in pairs])
    seen = []
    monkeypatch.setattr(evaluate, 'load_fid_inception', lambda path, device: seen.append(path) or (MeanColour(), None))
    weights = str(tmp_path / 'fid.pth')
    t = run(sample_root, tmp_path, '--data_list', 'test_pairs.txt', '--tom_result', str(tom),
            '--fid_inception_weights', weights)[str(tom)]['TOM']
    assert seen == [weights]
    assert t['metrics']['fid']['value'] == pytest.approx(0.0, abs=1e-3)
    assert math.isfinite(t['metrics']['kid']['mean']) and t['metrics']['kid']['std'] == pytest.approx(0.0)
    assert 'fid/kid' not in t['skipped']
    lines = capsys.readouterr().out.splitlines()
    for label in ('FID', 'KID'):
        row = next(line for line in lines if line.split()[:1] == [label])
        assert row.split()[-1] == '-'
    with open(tom / 'metrics.json') as f:
        saved = json.load(f)['TOM']['test_pairs.txt']
    assert set(saved['metrics']) == {'fid', 'kid'} and 'KID' in saved['settings']['fid_kid']


def test_fid_inception_from_local_file(tmp_path, monkeypatch):
    """A (random) torch-fidelity Inception weight file is read from disk: 2048-d features, FID(x, x) = 0."""
    with monkeypatch.context() as patch:  # build the network once without weights, to save random ones
        patch.setattr(fidelity_inception, 'load_state_dict_from_url', lambda *args, **kwargs: {})
        patch.setattr(fidelity_inception.FeatureExtractorInceptionV3, 'load_state_dict', lambda *args, **kwargs: None)
        state = fidelity_inception.FeatureExtractorInceptionV3('inception-v3-compat', ['2048']).state_dict()
    path = tmp_path / evaluate.FID_INCEPTION_FILE
    torch.save(state, path)
    model, reason = evaluate.load_fid_inception(str(path), 'cpu')
    assert reason is None
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (64, 48, 3), dtype=np.uint8) for _ in range(3)]
    with torch.no_grad():
        assert model(evaluate.to_uint8(images[0], 'cpu')).shape == (1, 2048)
    out = evaluate.fid_kid(images, images, model)
    assert out['fid']['value'] == pytest.approx(0.0, abs=1e-3)
    torch.save({'fc.weight': torch.zeros(3)}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='not torch-fidelity FID Inception-v3 weights'):
        evaluate.load_fid_inception(str(tmp_path / 'other.pth'), 'cpu')


# ---------------------------------------------------------------------------------------------
# VITON-HD and Dress Code

@pytest.fixture(scope='module')
def other_datasets(tmp_path_factory):
    """{dataset: root} of tiny VITON-HD and Dress Code sample sets (with VITON-HD's same-clothes list)."""
    base = tmp_path_factory.mktemp('datasets')
    for dataset in ('vitonhd', 'dresscode'):
        data_download.make_sample_dataset(base / dataset, n_train=1, n_test=2, dataset=dataset)
    return {dataset: base / dataset for dataset in ('vitonhd', 'dresscode')}


def save_results(folder, images):
    """{relative path: PIL image} -> result files (JPEG quality 100, by their .jpg names)."""
    for name, image in images.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / name, quality=100)


def test_gmm_region_from_the_datasets_garment_labels(other_datasets, tmp_path, empty_hub):
    """Dress Code upper_body, warps that are the persons' own garment regions (ATR label 4): IoU and
    SSIM 1. LIP's garment ids (5, 6, 7) would be Dress Code's skirt, pants and dress there."""
    root = other_datasets['dresscode']
    dataset = CPDataset(dataroot=str(root), datamode='test', data_list='test_pairs_paired.txt',
                        dataset='dresscode', category='upper_body')
    gmm, perfect = tmp_path / 'gmm', {}
    for index, cloth in enumerate(dataset.c_names):
        files = dataset.read_files(index)
        region = np.isin(files['parse'], 4)
        assert region.any() and not np.isin(files['parse'], CLOTH_LABELS)[region].any()
        perfect[f'warp-mask/{cloth}'] = Image.fromarray(region.astype(np.uint8) * 255)
        perfect[f'warp-cloth/{cloth}'] = Image.fromarray(np.where(region[..., None], np.asarray(files['image']), 255)
                                                         .astype(np.uint8))
    save_results(gmm, perfect)
    result = evaluate.main(['--dataroot', str(root), '--dataset', 'dresscode', '--category', 'upper_body',
                            '--gmm_result', str(gmm), '--device', 'cpu'])[str(gmm)]['GMM']
    assert result['settings']['cloth_labels'] == [4] and result['paired']
    assert result['metrics']['iou']['mean'] == pytest.approx(1, abs=0.01)
    assert result['metrics']['ssim']['mean'] > 0.95


def as_tryons(dataset):
    """The persons' own images at the model's size, as try-on results."""
    return {f'try-on/{person}': dataset.read_files(index)['image'] for index, person in enumerate(dataset.im_names)}


def test_ground_truth_read_at_the_outputs_size(other_datasets, tmp_path, empty_hub, capsys):
    """VITON-HD's 768x1024 persons against 192x256 try-ons made from them: near-perfect scores;
    no published figures beside them."""
    root = other_datasets['vitonhd']
    dataset = CPDataset(dataroot=str(root), datamode='test', data_list='test_pairs_same.txt', dataset='vitonhd')
    tom = tmp_path / 'tom'
    save_results(tom, as_tryons(dataset))
    t = evaluate.main(['--dataroot', str(root), '--dataset', 'vitonhd', '--tom_result', str(tom),
                       '--device', 'cpu'])[str(tom)]['TOM']
    assert t['settings']['data_list'] == 'test_pairs_same.txt' and t['paired']
    assert t['metrics']['ssim']['mean'] > 0.98 and t['metrics']['l1']['mean'] < 0.01
    table = capsys.readouterr().out
    assert 'published ' not in table and all(line.split()[-1] == '-' for line in table.splitlines()
                                             if line.split()[:1] == ['SSIM'])


def test_dresscode_published_figures_on_this_kid_scale(other_datasets, tmp_path, empty_hub, monkeypatch, capsys):
    """Unpaired Dress Code: FID and KID beside CP-VTON's published ones, KID unscaled on both sides."""
    root = other_datasets['dresscode']
    options = ['--dataroot', str(root), '--dataset', 'dresscode', '--category', 'dresses']
    dataset = CPDataset(dataroot=str(root), datamode='test', data_list='test_pairs_unpaired.txt',
                        dataset='dresscode', category='dresses')
    tom = tmp_path / 'tom'
    save_results(tom, as_tryons(dataset))
    monkeypatch.setattr(evaluate, 'load_fid_inception', lambda path, device: (MeanColour(), None))
    t = evaluate.main([*options, '--data_list', 'test_pairs_unpaired.txt', '--tom_result', str(tom),
                       '--device', 'cpu'])[str(tom)]['TOM']
    assert set(t['metrics']) == {'fid', 'kid'} and t['metrics']['fid']['value'] < 1
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.split()}
    assert rows['FID'][-1] == '35.1600' and rows['KID'][-1] == '0.0225'
    assert 'published: CP-VTON on Dress Code at 256x192' in ' '.join(rows['published:'])
