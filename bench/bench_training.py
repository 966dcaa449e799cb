"""How fast is affine-train's training path? Runs, in one process and one after the other:

  (a) affine-train's path: `Batches` slicing in-memory uint8 tensors, `train_epoch` (progress bar off);
  (b) the common recipe: torchvision dataset + ToTensor + DataLoader(shuffle=True), same model, batch and optimizer;
  (c) a bare loop of forward/backward/step over float tensors made beforehand: the lower bound;

then, as whole processes, the default 3-epoch `affine-train` against the common recipe run for 3 epochs
(imports, data loading, evaluation and files included). Prints the table and writes bench/results.json and
bench/results.md (which README.md includes).

    python bench/bench_training.py [--epochs-each 5] [--data FOLDER]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common_recipe import common_loader, common_train_epoch
from affine_nb.data import Batches, check_files, load_split, to_float
from affine_nb.model import make_model
from affine_nb.training import TrainConfig, environment, make_optimizer, make_scheduler, set_determinism, train_epoch

HERE = Path(__file__).parent


def fresh(cfg, steps_per_epoch):
    set_determinism(cfg)
    model = make_model()
    optimizer = make_optimizer(model, cfg)
    return model, optimizer, make_scheduler(optimizer, cfg, steps_per_epoch)


def bare_epoch(model, optimizer, inputs, targets):
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for images, labels in zip(inputs, targets):
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def process_seconds(command, env):
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs-each', type=int, default=5, help="epochs timed per path, interleaved; the median is reported")
    parser.add_argument('--data', default=None)
    parser.add_argument('--no-processes', action='store_true', help="skip the whole-process comparison")
    args = parser.parse_args()
    cfg = TrainConfig()
    root = check_files(args.data).parent.parent
    train = load_split(True, root)

    paths = {}
    batches = Batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed)
    model_a, optimizer_a, scheduler_a = fresh(cfg, len(batches))
    paths['(a) affine-train path'] = lambda: train_epoch(model_a, batches, optimizer_a, scheduler_a)
    loader = common_loader(root, True, cfg.batch_size)
    model_b, optimizer_b, _ = fresh(cfg, len(loader))
    paths['(b) common recipe'] = lambda: common_train_epoch(model_b, loader, optimizer_b)
    inputs = list(to_float(train.images).split(cfg.batch_size))
    targets = list(train.labels.split(cfg.batch_size))
    model_c, optimizer_c, _ = fresh(cfg, len(inputs))
    paths['(c) bare loop'] = lambda: bare_epoch(model_c, optimizer_c, inputs, targets)

    # Interleaved rounds (a, b, c, a, b, c, ...) so that a slow phase of a shared machine hits every path alike.
    times = {name: [] for name in paths}
    for round in range(args.epochs_each):
        for name, epoch in paths.items():
            times[name].append(timed(epoch, 1))
            print(f"round {round + 1}: {name:24s} {times[name][-1]:6.2f} s", flush=True)
    a, b, c = (statistics.median(t) for t in times.values())

    results = dict(seconds_per_epoch=dict(affine_train=a, common_recipe=b, bare_loop=c),
                   ratios=dict(common_over_affine=b / a, affine_over_bare=a / c),
                   epochs_each=args.epochs_each, environment=environment())
    if not args.no_processes:
        env = dict(os.environ, AFFINE_NB_DATA=str(root))
        with tempfile.TemporaryDirectory() as out:
            ours = process_seconds([str(Path(sys.executable).parent / 'affine-train'), '--quiet', '--out', out], env)
        print(f"affine-train, 3 epochs, whole process   {ours:6.1f} s", flush=True)
        common = process_seconds([sys.executable, str(HERE / 'common_recipe.py'), '--epochs', '3'], env)
        print(f"common recipe, 3 epochs, whole process  {common:6.1f} s", flush=True)
        results['process_seconds'] = dict(affine_train=ours, common_recipe=common, ratio=common / ours)

    (HERE / 'results.json').write_text(json.dumps(results, indent=1) + '\n')
    (HERE / 'results.md').write_text(results_table(results))
    print(results_table(results))


def results_table(r) -> str:
    s, q = r['seconds_per_epoch'], r['ratios']
    env = r['environment']
    lines = ["| path | seconds per training epoch |", "|---|---|",
             f"| (a) affine-train: in-memory tensors, `Batches` | {s['affine_train']:.2f} |",
             f"| (b) common recipe: dataset + `ToTensor` + `DataLoader(shuffle=True)` | {s['common_recipe']:.2f} |",
             f"| (c) bare loop over pre-made float tensors | {s['bare_loop']:.2f} |",
             f"| ratio (b)/(a): how much faster than the common recipe | **{q['common_over_affine']:.2f}×** |",
             f"| ratio (a)/(c): overhead over the bare loop | **{q['affine_over_bare']:.2f}** |"]
    if 'process_seconds' in r:
        p = r['process_seconds']
        lines += ["", "| whole process, 3 epochs, evaluation and files included | seconds |", "|---|---|",
                  f"| `affine-train` | {p['affine_train']:.1f} |",
                  f"| common recipe (`bench/common_recipe.py`) | {p['common_recipe']:.1f} |",
                  f"| ratio | **{p['ratio']:.2f}×** |"]
    lines += ["", f"Measured by `python bench/bench_training.py` (median of {r['epochs_each']} interleaved epochs per path) on "
              f"{env['cpu']}, {env['cpu_count']} cores, {env['threads']} threads, torch {env['torch']}."]
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
