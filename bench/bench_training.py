"""How fast is affine-train's training path, and how far from what the hardware allows? In one process:

  round after round (so that a slow phase of a shared machine hits every path alike), the compute bound (the model's
  own convolutions and matrix products, forward and the backward products training needs, same shapes, same
  threads, timed alone and scaled to one epoch), then one epoch of each path:
    (a) affine-train: `Batches` over in-memory uint8 tensors, `train_epoch`, fused AdamW;
    variants of (a), what each replaced or was tried: AdamW's default (foreach) kernel, the custom operator for
    LearnedAffine, bf16 autocast (on a CPU with native bf16), and `torch.compile` of the model;
    (b) the common recipe: torchvision dataset + ToTensor + DataLoader(shuffle=True) and PyTorch's default AdamW;
    (c) a bare loop of forward/backward/step over float tensors made beforehand;
then the whole default 3-epoch `affine-train` process against the common recipe's, alternating, several times
(imports, data loading, evaluation and files included), and one process of each preset (`--preset default`,
`speedrun-4s`, `speedrun`) with the seconds its training took to reach 0.90 and 0.93 test accuracy. Prints the figures
and writes bench/results.json and bench/results.md (which README.md includes).

    python bench/bench_training.py [--rounds 5] [--process-rounds 3] [--data FOLDER]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common_recipe import common_loader, common_optimizer, common_train_epoch
from affine_nb.data import Batches, to_float
from affine_nb.integrity import check_files, checked_split
from affine_nb.extending import use_impl
from affine_nb.model import make_model
from affine_nb.repro import environment
from affine_nb.training import Learner, Recorder
from affine_nb.hardware import MixedPrecision, keep_freed_memory, native_bf16
from affine_nb.config import RunConfig

HERE = Path(__file__).parent
DEFAULT = '(a) affine-train: fused AdamW'


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def product_timers(model: nn.Module, images: torch.Tensor) -> dict:
    "For every Conv2d and Linear of `model`, the products one training step computes with its shapes, as callables."
    inputs = {}
    def record(m, i, o): inputs[m] = (i[0].detach(), o.detach())
    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad(): model(images)
    for h in hooks: h.remove()
    first = next(iter(inputs))       # the first layer's input is the images: no gradient is computed for it
    timers = {}
    for m, (x, y) in inputs.items():
        w, g = m.weight.detach(), torch.randn_like(y)
        if isinstance(m, nn.Conv2d):
            args = ([m.out_channels] if m.bias is not None else None, m.stride, m.padding, m.dilation, False, [0, 0],
                    m.groups)
            timers[f"{type(m).__name__} {tuple(x.shape)} forward"] = \
                lambda x=x, w=w, m=m: nn.functional.conv2d(x, w, None, m.stride, m.padding)
            timers[f"{type(m).__name__} weight gradient"] = \
                lambda x=x, w=w, g=g, a=args: torch.ops.aten.convolution_backward(g, x, w, *a, [False, True, False])
            if m is not first:
                timers[f"{type(m).__name__} input gradient"] = \
                    lambda x=x, w=w, g=g, a=args: torch.ops.aten.convolution_backward(g, x, w, *a, [True, False, False])
        else:
            timers[f"Linear {tuple(w.shape[::-1])} forward"] = lambda x=x, w=w: x @ w.t()
            timers[f"Linear {tuple(w.shape[::-1])} weight gradient"] = lambda x=x, g=g: g.t() @ x
            if m is not first:
                timers[f"Linear {tuple(w.shape[::-1])} input gradient"] = lambda w=w, g=g: g @ w
    return timers


def compute_bound(cfg: RunConfig, n_train: int, repeats: int = 15) -> dict:
    """Seconds per epoch of the model's products alone: each timed (median of `repeats` runs of 10) at the batch size,
    times the batches."""
    model = make_model(batchnorm=cfg.batchnorm)
    images = torch.rand(cfg.batch_size, 1, 28, 28)
    products = {}
    for name, fn in product_timers(model, images).items():
        for _ in range(5): fn()
        products[name] = median_seconds(lambda: [fn() for _ in range(10)], repeats) / 10
    per_step = sum(products.values())
    return dict(per_step=per_step, per_epoch=per_step * n_train / cfg.batch_size, products=products)


def fresh(cfg, steps_per_epoch, optimizer=None, impl='autograd'):
    cfg.prepare()
    model = use_impl(make_model(), impl)
    opt = optimizer(model, cfg) if optimizer else cfg.make_optimizer(model)
    return model, opt, cfg.make_scheduler(opt, steps_per_epoch)


def train_epoch(model, batches, optimizer, scheduler, precision: str = 'fp32') -> None:
    "One epoch through the project's `Learner`, with the recipe's `Recorder` (and bf16 autocast if asked)."
    callbacks = [Recorder()] + ([MixedPrecision()] if precision == 'bf16' else [])
    Learner(model, batches, nn.CrossEntropyLoss(), optimizer, scheduler, callbacks).fit(1)


def bare_epoch(model, optimizer, inputs, targets):
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for images, labels in zip(inputs, targets):
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def epoch_paths(cfg, root, train) -> dict:
    "name -> a callable that trains one epoch along that path."
    batches = Batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed)
    paths = {}
    def ours(name, precision='fp32', **kw):
        model, opt, sched = fresh(cfg, len(batches), **kw)
        paths[name] = lambda: train_epoch(model, batches, opt, sched, precision=precision)
    ours(DEFAULT)
    ours('(a) with AdamW foreach (the default kernel)', optimizer=common_optimizer)
    ours('(a) with the custom operator for LearnedAffine', impl='op')
    if native_bf16(): ours('(a) with bf16 autocast', precision='bf16')
    model, opt, sched = fresh(cfg, len(batches))
    compiled = torch.compile(model)
    paths['(a) with torch.compile(model)'] = lambda: train_epoch(compiled, batches, opt, sched)
    loader = common_loader(root, True, cfg.batch_size)
    model_b, opt_b, _ = fresh(cfg, len(loader), optimizer=common_optimizer)
    paths['(b) common recipe'] = lambda: common_train_epoch(model_b, loader, opt_b)
    inputs, targets = list(to_float(train.images).split(cfg.batch_size)), list(train.labels.split(cfg.batch_size))
    model_c, opt_c, _ = fresh(cfg, len(inputs))
    paths['(c) bare loop, pre-made float tensors'] = lambda: bare_epoch(model_c, opt_c, inputs, targets)
    return paths


def process_seconds(command, env) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def seconds_to(metrics: dict, target: float) -> float | None:
    """Seconds of training (each epoch's evaluation included) until the test accuracy first reached `target`; None if it
    never did."""
    elapsed = 0.0
    for row in metrics['history']:
        elapsed += row['seconds']
        if row['test_acc'] >= target: return elapsed
    return None


def presets_run(name: str, env) -> dict:
    """One whole `affine-train --preset NAME` process (seed 42): its test accuracy, its seconds to 0.90 and 0.93,
    training and whole process."""
    with tempfile.TemporaryDirectory() as out:
        process = process_seconds([str(Path(sys.executable).parent / 'affine-train'), '--preset', name, '--quiet',
                                   '--out', out], env)
        metrics = json.loads((Path(out) / 'metrics.json').read_text())
    print(f"--preset {name}: {metrics['test_acc']:.4f} in {process:.1f} s", flush=True)
    return dict(test_acc=metrics['test_acc'], to_090=seconds_to(metrics, 0.90), to_093=seconds_to(metrics, 0.93),
                train=metrics['wall_seconds'], process=process)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5,
                        help="epochs timed per path, interleaved; the median is reported")
    parser.add_argument('--process-rounds', type=int, default=3,
                        help="whole processes timed per command, alternating (0: skip)")
    parser.add_argument('--data', default=None)
    args = parser.parse_args()
    cfg = RunConfig()
    cfg.prepare()
    keep_freed_memory()             # as affine-train does at start; every path in this process gains from it
    root = check_files(args.data).parent.parent
    train = checked_split(True, root)
    paths = epoch_paths(cfg, root, train)
    times, bounds = {name: [] for name in paths}, []
    for round in range(args.rounds + 1):          # round 0 warms up (and compiles); it is reported apart
        bounds.append(compute_bound(cfg, len(train)))     # in every round too: the machine's speed drifts
        print(f"round {round}: compute bound {bounds[-1]['per_epoch']:6.2f} s per epoch", flush=True)
        for name, epoch in paths.items():
            start = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - start)
            print(f"round {round}: {name:45s} {times[name][-1]:6.2f} s", flush=True)
    epochs = {name: statistics.median(t[1:]) for name, t in times.items()}
    bound = min(bounds[1:], key=lambda b: abs(b['per_epoch'] - statistics.median(b['per_epoch'] for b in bounds[1:])))
    for name, seconds in bound['products'].items(): print(f"{name:45s} {seconds * 1e3:6.3f} ms", flush=True)
    first = {name: t[0] for name, t in times.items()}

    results = dict(bound=bound, seconds_per_epoch=epochs, first_epoch=first, rounds=args.rounds,
                   environment=environment(), native_bf16=native_bf16())
    if args.process_rounds:
        env = dict(os.environ, AFFINE_NB_DATA=str(root))
        commands = {'affine-train': [str(Path(sys.executable).parent / 'affine-train'), '--quiet'],
                    'common recipe': [sys.executable, str(HERE / 'common_recipe.py'), '--epochs', '3']}
        seconds = {name: [] for name in commands}
        for round in range(args.process_rounds):
            for name, command in commands.items():
                with tempfile.TemporaryDirectory() as out:
                    seconds[name].append(process_seconds(command + (['--out', out] if name == 'affine-train' else []),
                                                         env))
                print(f"process round {round + 1}: {name:15s} {seconds[name][-1]:6.1f} s", flush=True)
        results['process_seconds'] = {name: statistics.median(s) for name, s in seconds.items()}
        imports = [process_seconds([sys.executable, '-c', 'import affine_nb.cli, affine_nb.data'], env)
                   for _ in range(3)]
        results['process_seconds']['start and imports'] = statistics.median(imports)
        results['time_to_accuracy'] = {name: presets_run(name, env) for name in ('default', 'speedrun-4s', 'speedrun')}
    (HERE / 'results.json').write_text(json.dumps(results, indent=1) + '\n')
    (HERE / 'results.md').write_text(results_table(results))
    print(results_table(results))


def results_table(r) -> str:
    bound, epochs = r['bound']['per_epoch'], r['seconds_per_epoch']
    ours, common = epochs[DEFAULT], epochs['(b) common recipe']
    lines = ["| path | seconds per training epoch | epoch / compute bound |", "|---|---|---|",
             f"| compute bound: the model's convolutions and matrix products alone | {bound:.2f} | 1 |"]
    for name, seconds in epochs.items():
        name_md = f"**{name}**" if name == DEFAULT else name
        lines.append(f"| {name_md} | {seconds:.2f} | {seconds / bound:.2f} |")
    lines += ["", f"(b)/(a): the training epoch is **{common / ours:.2f}×** faster than the common recipe's; "
              f"(a) is at **{ours / bound:.2f}×** the compute bound."]
    compiled = '(a) with torch.compile(model)'
    warmup = r['first_epoch'][compiled] - epochs[compiled]
    saved = 3 * (ours - epochs[compiled])
    lines += [f"`torch.compile`: {warmup:.1f} s of warm-up in the first epoch, against {saved:+.1f} s saved over 3 "
              f"epochs."]
    if not r['native_bf16']: lines += ["This CPU has no native bf16: the bf16 path was not timed."]
    if 'process_seconds' in r:
        p = r['process_seconds']
        lines += ["", "| whole process, 3 epochs, evaluation and files included | seconds |", "|---|---|",
                  f"| `affine-train` | {p['affine-train']:.1f} |",
                  f"| common recipe (`bench/common_recipe.py`) | {p['common recipe']:.1f} |",
                  f"| ratio | **{p['common recipe'] / p['affine-train']:.2f}×** |",
                  f"| of which each pays to start Python and import torch and torchvision | "
                  f"{p['start and imports']:.1f} |"]
    if 'time_to_accuracy' in r:
        when = lambda s: '—' if s is None else f"{s:.1f}"
        lines += ["", "| `affine-train --preset`, seed 42 | test accuracy | training s to 0.90 | training s to 0.93 | "
                      "training s | whole process s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {t['test_acc']:.4f} | {when(t['to_090'])} | {when(t['to_093'])} | {t['train']:.1f} | "
                  f"{t['process']:.1f} |"
                  for name, t in r['time_to_accuracy'].items()]
        lines += ["", "Training seconds count each epoch's evaluation; — : not reached."]
    env = r['environment']
    lines += ["", f"Measured by `python bench/bench_training.py` (median of {r['rounds']} interleaved epochs per path "
              f"after a warm-up round; whole processes alternating) on {env['cpu']}, {env['cpu_count']} cores, "
              f"{env['threads']} threads, torch {env['torch']}."]
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
