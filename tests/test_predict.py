"""Using a trained model: every committed run with weights loads back with its recorded test accuracy; an image file
of any kind a user may have is read as FashionMNIST's, and a test image saved as a PNG is the tensor it came from;
`affine-predict`, and two `affine-export` processes started at once into one name; and every bad file or
folder gets one line and exit status 2.
"""
import json, os, random, struct, subprocess, sys, zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affine_nb.data import CLASSES, load_split
from affine_nb.predict import (EXPORT_EXTRA, MAX_BYTES, MAX_PIXELS, SIZE, export_main, load_image, load_run,
                               predict_main, probabilities)
from affine_nb.publish import run_folders
from affine_nb.training import evaluate
from tiny_train import ROOT, default_sigint, one_line, run_in_process

BIN = Path(sys.executable).parent
DEFAULT = ROOT / 'results' / 'default'


@pytest.fixture(scope='module')
def test_split():
    return load_split(False)


def test_every_committed_run_with_weights_loads_with_its_accuracy(test_split):
    """The reference runs of every preset keep their weights, and each loads back with the test accuracy it
    recorded, to the last image."""
    folders = {path.parent for path in (ROOT / 'results').glob('**/model.pt')}
    published = run_folders(ROOT, parts=('reference',))
    assert {*published['reference'].values(), *published['speedrun'].values()} <= folders, folders
    for folder in sorted(folders):
        run = load_run(folder)
        assert evaluate(run.model, test_split)[1] == run.metrics['test_acc'], folder


def test_a_png_of_a_test_image_is_the_tensor(tmp_path, test_split):
    """A test image saved as an 8-bit PNG, a 16-bit one, an opaque RGBA one and an inverted one reads back pixel for
    pixel, so the network's probabilities are the tensor's."""
    images = test_split.images[:50]
    for i, image in enumerate(images):
        pixels = image.numpy()
        Image.fromarray(pixels).save(tmp_path / f'{i}-8.png')
        Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / f'{i}-16.png')
        Image.fromarray(pixels).convert('RGBA').save(tmp_path / f'{i}-rgba.png')
        Image.fromarray(255 - pixels).save(tmp_path / f'{i}-inverted.png')
    model = load_run(DEFAULT).model
    for kind in ('8', '16', 'rgba', 'inverted'):
        read = torch.stack([load_image(tmp_path / f'{i}-{kind}.png') for i in range(len(images))])
        assert torch.equal(read, images), kind
        assert torch.equal(probabilities(model, read), probabilities(model, images)), kind


def test_any_image_a_user_may_have_is_read(tmp_path):
    "PNG and JPEG in every mode Pillow writes them, of sizes from 1 × 1 to long and thin: each becomes 28 × 28 uint8."
    seed = random.randrange(2**32); print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    modes = {'PNG': ('1', 'L', 'LA', 'P', 'RGB', 'RGBA', 'I;16'), 'JPEG': ('L', 'RGB', 'CMYK')}
    sizes = [(1, 1), (1, 300), (300, 1), (2000, 40), (40, 2000), (5, 7)]
    for (fmt, kinds), (w, h) in [(item, size) for item in modes.items() for size in sizes]:
        for mode in kinds:
            rgba = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), 'RGBA')
            img = rgba.convert('I;16') if mode == 'I;16' else rgba.convert(mode)
            path = tmp_path / f"{mode.replace(';', '')}-{w}x{h}.{fmt.lower()}"
            img.save(path, fmt, **({'transparency': 0} if mode == 'P' else {}))
            read = load_image(path)
            assert read.dtype == torch.uint8 and read.shape == (SIZE, SIZE), (path, read.shape)


def png_header(width: int, height: int) -> bytes:
    "A small PNG file that says it has `width` × `height` grey pixels, and holds a few."
    chunk = lambda kind, data: struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(bytes(100))) + chunk(b'IEND', b''))


def sparse(path: Path, size: int) -> None:
    "A file of `size` zero bytes that takes no disk."
    path.touch(); os.truncate(path, size)


def test_every_bad_file_gets_one_line(tmp_path):
    """Not an image, empty, cut short, too many bytes or pixels, another format, a folder, a pipe, a device, a link to
    nothing, no file: each is named in one line with its cause, exit status 2, and nothing is printed on stdout."""
    good = tmp_path / 'good.png'; Image.new('L', (40, 30), 200).save(good)
    jpeg = tmp_path / 'good.jpg'; Image.new('RGB', (300, 200), 'white').save(jpeg)
    bad = {'text.png': ('not an image', lambda p: p.write_text('a shirt')),
           'empty.jpg': ('is empty', lambda p: p.touch()),
           'cut.png': ('damaged image', lambda p: p.write_bytes(good.read_bytes()[:60])),
           'cut.jpg': ('damaged image', lambda p: p.write_bytes(jpeg.read_bytes()[:400])),
           'huge.png': ('MiB', lambda p: sparse(p, MAX_BYTES + 1)),
           'wide.png': (f'more than {MAX_PIXELS:,} pixels', lambda p: p.write_bytes(png_header(10_000, 10_000))),
           'bomb.png': (f'more than {MAX_PIXELS:,} pixels', lambda p: p.write_bytes(png_header(30_000, 30_000))),
           'small.gif': ('GIF image', lambda p: Image.new('L', (4, 4)).save(p)),
           'folder.png': ('not a file', lambda p: p.mkdir()),
           'pipe.png': ('not a file', lambda p: os.mkfifo(p)),
           'zero.png': ('not a file', lambda p: p.symlink_to('/dev/zero')),
           'dangling.png': ('does not exist', lambda p: p.symlink_to(tmp_path / 'nowhere.png')),
           'missing.png': ('does not exist', lambda p: None)}
    for name, (cause, make) in bad.items():
        make(tmp_path / name)
        status, out, err = run_in_process(predict_main, '--run', DEFAULT, good, tmp_path / name)
        assert (status, out) == (2, '') and cause in one_line(err) and name in err, (name, err)
    status, out, err = run_in_process(predict_main, '--run', tmp_path, good)
    assert status == 2 and 'holds no metrics.json' in one_line(err), err
    status, out, _ = run_in_process(predict_main, '--run', DEFAULT, good)
    assert status == 0 and out.startswith(f"{good}: "), out


def test_commands_and_two_exports_at_once(tmp_path, test_split):
    """`affine-predict` gives a PNG of a test image the tensor's class; two `affine-export` processes started at once
    into one name: one writes it and checks it on the test set, the other is refused with one line; a third export is
    refused before any work, the file left as it was."""
    Image.fromarray(test_split.images[7].numpy()).save(tmp_path / 'seven.png')
    status, out, err = run_in_process(predict_main, '--run', DEFAULT, tmp_path / 'seven.png', '--json')
    assert status == 0, err
    expected = probabilities(load_run(DEFAULT).model, test_split.images[7:8]).argmax(1).item()
    assert json.loads(out)[0]['classes'][0]['name'] == CLASSES[expected], out
    target = tmp_path / 'model.pt2'         # torch.export's file: the quickest to write; ONNX goes the same way
    command = [BIN / 'affine-export', '--run', DEFAULT, '--pt2', target]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_sigint) for _ in range(2)]
    ended = sorted((p.wait(timeout=300), *p.communicate()) for p in both)
    (ok, out, _), (refused, _, err) = ended
    assert (ok, refused) == (0, 2), ended
    assert 'the same class as PyTorch for 10000 of 10000 test images' in out and 'model.pt2' in one_line(err), ended
    assert [p.name for p in tmp_path.iterdir() if 'partial' in p.name] == [], list(tmp_path.iterdir())
    written = target.read_bytes()
    status, _, err = run_in_process(export_main, '--run', DEFAULT, '--pt2', target)
    assert status == 2 and 'exists' in one_line(err) and target.read_bytes() == written, err


def test_export_refuses_before_any_work(tmp_path, monkeypatch):
    """A link planted at the name, a folder that does not exist, no output asked for, and the export extra missing:
    one line each, exit status 2, nothing written."""
    (tmp_path / 'planted.onnx').symlink_to(tmp_path / 'elsewhere.onnx')
    for argv, cause in [(['--onnx', tmp_path / 'planted.onnx'], 'exists'),
                        (['--pt2', tmp_path / 'no' / 'model.pt2'], 'is not a folder'),
                        ([], 'give a run folder, and --onnx FILE')]:
        status, out, err = run_in_process(export_main, '--run', DEFAULT, *argv)
        assert (status, out) == (2, '') and cause in one_line(err), (argv, err)
    monkeypatch.setitem(sys.modules, 'onnxscript', None)          # as if the export extra were not installed
    status, _, err = run_in_process(export_main, '--run', DEFAULT, '--onnx', tmp_path / 'model.onnx')
    assert status == 2 and EXPORT_EXTRA in one_line(err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['planted.onnx'] and not (tmp_path / 'elsewhere.onnx').exists()
