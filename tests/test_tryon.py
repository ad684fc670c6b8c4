"""tryon.py: one pair gives test.py's try-on for that pair; clear errors; the strip.

The comparison is exact. Both scripts save the try-on through visualization.save_images, so
tryon.py's `--out out.jpg` must be byte for byte test.py's JPEG, and its `--out out.png` (the
uint8 image before any JPEG) must encode to those same bytes. Comparing the PNG with the
decoded JPEG would need a tolerance of the size of JPEG's loss (tens of levels), which would
hide real differences.

test.py runs with --batch_size 1, the batch shape tryon.py uses: on a CPU the GMM's
convolutions over a batch of two differ from single items by ~5e-7, enough to flip a few
uint8 truncations of the warps, whose JPEG encoding then changes the try-on visibly.
"""
import io
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cp_dataset
import layouts
import networks
import sample_data
import test as test_py
import tryon

ROOT_DIR = Path(__file__).resolve().parent.parent


def pair_args(data, person, cloth):
    """tryon.py's input options for a pair of the sample test split."""
    split = Path(data) / 'test'
    return ['--person', str(split / 'image' / person),
            '--parse', str(split / 'image-parse' / person.replace('.jpg', '.png')),
            '--pose', str(split / 'pose' / person.replace('.jpg', '_keypoints.json')),
            '--cloth', str(split / 'cloth' / cloth),
            '--cloth_mask', str(split / 'cloth-mask' / cloth)]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Sample data and random checkpoints through the pipeline (GMM test, step 3's copy, TOM
    test), then tryon.py on the first test pair, once with --out .jpg, once .png with --strip."""
    tmp = tmp_path_factory.mktemp('tryon')
    data, result = tmp / 'data', tmp / 'result'
    sample_data.generate(data, n_train=2, n_test=2, seed=0)
    torch.manual_seed(0)
    checkpoints = {stage: tmp / f'{stage.lower()}_final.pth' for stage in ('GMM', 'TOM')}
    for stage, path in checkpoints.items():
        networks.save_checkpoint(networks.build_model(stage), path)

    common = ['--dataroot', str(data), '--datamode', 'test', '--data_list', 'test_pairs.txt',
              '--batch_size', '1', '--workers', '0', '--device', 'cpu',
              '--result_dir', str(result), '--tensorboard_dir', str(tmp / 'tensorboard')]
    assert test_py.main(['--stage', 'GMM', '--checkpoint', str(checkpoints['GMM'])] + common) == 0
    for folder in ('warp-cloth', 'warp-mask'):  # step 3
        shutil.copytree(result / 'gmm_final.pth' / 'test' / folder, data / 'test' / folder)
    assert test_py.main(['--stage', 'TOM', '--checkpoint', str(checkpoints['TOM'])] + common) == 0

    person, cloth = (data / 'test_pairs.txt').read_text().split()[:2]
    inputs = pair_args(data, person, cloth) + ['--device', 'cpu', '--gmm_checkpoint', str(checkpoints['GMM']),
                                                '--tom_checkpoint', str(checkpoints['TOM'])]
    assert tryon.main(inputs + ['--out', str(tmp / 'out.jpg')]) == 0
    strip = ['--strip', str(tmp / 'strips' / 'strip.png')]
    assert tryon.main(inputs + ['--out', str(tmp / 'out.png')] + strip) == 0
    return Namespace(tmp=tmp, data=data, person=person, cloth=cloth, inputs=pair_args(data, person, cloth),
                     checkpoints=checkpoints, gmm_result=result / 'gmm_final.pth' / 'test',
                     tryon_jpeg=(result / 'tom_final.pth' / 'test' / 'try-on' / person).read_bytes())


def test_tryon_equals_test_py(run):
    assert (run.tmp / 'out.jpg').read_bytes() == run.tryon_jpeg
    buffer = io.BytesIO()
    Image.open(run.tmp / 'out.png').save(buffer, format='JPEG')  # as save_images saves a .jpg
    assert buffer.getvalue() == run.tryon_jpeg


def test_strip_columns(run):
    strip = np.array(Image.open(run.tmp / 'strips' / 'strip.png'))
    assert strip.shape == (256, 1344, 3)
    tiles = np.split(strip, 7, axis=1)
    expected = {0: run.data / 'test' / 'cloth' / run.cloth, 2: run.data / 'test' / 'image' / run.person,
                4: run.gmm_result / 'warp-cloth' / run.cloth,  # the in-memory warp = test.py's file
                5: run.gmm_result / 'warp-mask' / run.cloth, 6: run.tmp / 'out.png'}
    for column, path in expected.items():
        assert np.array_equal(tiles[column], np.array(Image.open(path).convert('RGB'))), path
    assert len(np.unique(tiles[3].reshape(-1, 3), axis=0)) > 2  # the parse, in LIP colours


def test_missing_checkpoints(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here: the defaults are missing
    assert tryon.main(run.inputs + ['--out', 'out.png']) == 2
    err = capsys.readouterr().err
    assert 'GMM checkpoint not found: checkpoints/gmm_train_new/gmm_final.pth (--gmm_checkpoint)' in err
    assert 'TOM checkpoint not found: checkpoints/tom_train_new/tom_final.pth (--tom_checkpoint)' in err
    assert 'python data_download.py --checkpoints' in err
    assert not (tmp_path / 'out.png').exists()

    tom = str(run.checkpoints['TOM'])
    assert tryon.main(run.inputs + ['--gmm_checkpoint', tom, '--tom_checkpoint', tom]) == 2
    assert 'looks like a TOM checkpoint; --stage is GMM' in capsys.readouterr().err


def test_wrong_size_input_exits_2_with_message(run, tmp_path):
    person = tmp_path / 'person.jpg'
    Image.new('RGB', (100, 80)).save(person)
    inputs = run.inputs[:]
    inputs[1] = str(person)
    result = subprocess.run([sys.executable, 'tryon.py', *inputs, '--out', str(tmp_path / 'out.png')],
                            cwd=ROOT_DIR, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(f'error: {person}: image is 100x80, expected 192x256')
    assert 'prepare_data.py' in result.stderr and 'Traceback' not in result.stderr


def test_bad_pose_and_out_extension(run, tmp_path, capsys):
    pose = tmp_path / 'pose.json'
    pose.write_text('{"people": []}')
    inputs = run.inputs[:]
    inputs[5] = str(pose)
    assert tryon.main(inputs) == 2
    assert capsys.readouterr().err == f'error: {pose}: no people in the pose file (OpenPose found nobody)\n'
    with pytest.raises(SystemExit) as info:
        tryon.main(run.inputs + ['--out', 'out.xyz'])
    assert info.value.code == 2 and 'unknown image file extension' in capsys.readouterr().err


def test_help_covers_every_flag(capsys):
    actions = tryon.build_parser()._actions
    assert all(action.help for action in actions)
    with pytest.raises(SystemExit) as info:
        tryon.main(['--help'])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for action in actions for flag in action.option_strings)


def test_cpvtonplus_tryon_equals_test_py(tmp_path):
    """--variant cpvton+: the parse from image-parse-new, the body mask, warps named by person."""
    data, result = tmp_path / 'data', tmp_path / 'result'
    sample_data.generate(data, n_train=2, n_test=2, seed=0)
    torch.manual_seed(0)
    checkpoints = {stage: tmp_path / f'{stage.lower()}_final.pth' for stage in ('GMM', 'TOM')}
    for stage, path in checkpoints.items():
        networks.save_checkpoint(networks.build_model(stage, variant='cpvton+'), path)
    common = ['--dataroot', str(data), '--datamode', 'test', '--data_list', 'test_pairs.txt', '--batch_size', '1',
              '--workers', '0', '--device', 'cpu', '--variant', 'cpvton+', '--result_dir', str(result),
              '--tensorboard_dir', str(tmp_path / 'tensorboard')]
    assert test_py.main(['--stage', 'GMM', '--checkpoint', str(checkpoints['GMM'])] + common) == 0
    for folder in ('warp-cloth', 'warp-mask'):  # step 3
        shutil.copytree(result / 'gmm_final.pth' / 'test' / folder, data / 'test' / folder)
    assert test_py.main(['--stage', 'TOM', '--checkpoint', str(checkpoints['TOM'])] + common) == 0
    person, cloth = (data / 'test_pairs.txt').read_text().split()[:2]
    inputs = pair_args(data, person, cloth)
    inputs[3] = str(data / 'test' / 'image-parse-new' / person.replace('.jpg', '.png'))
    inputs += ['--body_mask', str(data / 'test' / 'image-mask' / person.replace('.jpg', '.png')),
               '--variant', 'cpvton+', '--device', 'cpu', '--out', str(tmp_path / 'out.jpg'),
               '--gmm_checkpoint', str(checkpoints['GMM']), '--tom_checkpoint', str(checkpoints['TOM'])]
    assert tryon.main(inputs) == 0
    assert (tmp_path / 'out.jpg').read_bytes() == (result / 'tom_final.pth' / 'test' / 'try-on' / person).read_bytes()
    with pytest.raises(SystemExit):  # the body mask is required in this mode
        tryon.main([arg for arg in inputs if 'image-mask' not in arg and arg != '--body_mask'])


def dataset_pair(dataset, category, tmp_path):
    """A VITON-HD or Dress Code sample set in tmp_path/data, random checkpoints, and tryon.py's
    options for its first unpaired test pair, the files as they are (768x1024)."""
    data = tmp_path / 'data'
    sample_data.generate(data, n_train=1, n_test=2, seed=0, dataset=dataset)
    layout = layouts.LAYOUTS[dataset]
    person, cloth = cp_dataset.read_pairs(layout.pairs_path(data, layout.test_list, category))[0]
    split_dir = layout.split_dir(data, 'test', category)
    # Dress Code ships no cloth masks: the dataset makes them, as it does for the GMM test
    cp_dataset.CPDataset(dataroot=str(data), datamode='test', data_list=layout.test_list, dataset=dataset,
                         category=category)
    files = layout.input_paths(split_dir, person, cloth)
    options = ['--dataset', dataset] + (['--category', category] if category else [])
    inputs = [f'--{option}={files[key]}' for key, option in tryon.INPUTS.items() if key in files] + options
    return data, Path(split_dir), person, options, inputs


@pytest.mark.parametrize('dataset, category', [('vitonhd', None), ('dresscode', 'dresses')])
def test_dataset_pair_equals_test_py(tmp_path, dataset, category):
    """A pair of VITON-HD's or Dress Code's own files (their size, label set and keypoint frame)
    tried on directly: test.py's try-on of that pair."""
    data, split_dir, person, options, inputs = dataset_pair(dataset, category, tmp_path)
    torch.manual_seed(0)
    checkpoints = {stage: tmp_path / f'{stage.lower()}_final.pth' for stage in ('GMM', 'TOM')}
    for stage, path in checkpoints.items():
        networks.save_checkpoint(networks.build_model(stage), path)
    result = tmp_path / 'result'
    common = ['--dataroot', str(data), *options, '--datamode', 'test', '--batch_size', '1', '--workers', '0',
              '--device', 'cpu', '--result_dir', str(result), '--tensorboard_dir', str(tmp_path / 'tensorboard')]
    assert test_py.main(['--stage', 'GMM', '--checkpoint', str(checkpoints['GMM'])] + common) == 0
    for folder in ('warp-cloth', 'warp-mask'):  # step 3
        shutil.copytree(result / 'gmm_final.pth' / 'test' / folder, split_dir / folder)
    assert test_py.main(['--stage', 'TOM', '--checkpoint', str(checkpoints['TOM'])] + common) == 0
    out = tmp_path / 'out.jpg'
    assert tryon.main(inputs + ['--device', 'cpu', '--out', str(out), '--strip', str(tmp_path / 'strip.png'),
                                '--gmm_checkpoint', str(checkpoints['GMM']),
                                '--tom_checkpoint', str(checkpoints['TOM'])]) == 0
    assert out.read_bytes() == (result / 'tom_final.pth' / 'test' / 'try-on' / person).read_bytes()
    assert Image.open(tmp_path / 'strip.png').size == (1344, 256)


def test_dataset_run_names_and_model_size(tmp_path, monkeypatch, capsys):
    """Without --*_checkpoint the step scripts' checkpoints of the dataset are looked for; with
    --fine_height/--fine_width the inputs are resized to that size and the models built for it."""
    _, _, _, _, inputs = dataset_pair('dresscode', 'lower_body', tmp_path)
    monkeypatch.chdir(tmp_path)
    assert tryon.main(inputs) == 2
    assert 'checkpoints/gmm_train_dresscode_lower_body/gmm_final.pth' in capsys.readouterr().err
    size = ['--fine_height', '512', '--fine_width', '384']
    assert tryon.main(inputs + size) == 2  # the run name names the size
    assert 'checkpoints/gmm_train_dresscode_lower_body_512x384/gmm_final.pth' in capsys.readouterr().err
    checkpoints = []
    for stage in ('GMM', 'TOM'):
        checkpoints += [f'--{stage.lower()}_checkpoint', str(tmp_path / f'{stage}.pth')]
        networks.save_checkpoint(networks.build_model(stage, fine_height=512, fine_width=384), checkpoints[-1])
    assert tryon.main(inputs + size + checkpoints + ['--device', 'cpu', '--out', 'out.png']) == 0
    assert Image.open(tmp_path / 'out.png').size == (384, 512)
    with pytest.raises(SystemExit):
        tryon.main(inputs + ['--fine_height', '500'])
    with pytest.raises(SystemExit):  # Dress Code needs its category
        tryon.main([arg for arg in inputs if arg not in ('--category', 'lower_body')])
