"""Short portable fits for the vendor test: one epoch on the first 2 000 training and 500 test images, one thread, of
the default recipe, and of a small speedrun network (channels_last, γ and β inside BatchNorm's kernel) on 500 of them.
Prints the default run's weights digest and final train loss, the kernels ATen ran, and the speedrun's digest. Run it
in portable mode."""
from affine_nb.integrity import checked_split
from affine_nb.repro import kernel_fingerprint
from affine_nb.config import RunConfig, preset
from affine_nb.training import fit

if __name__ == '__main__':
    train, test = checked_split(True).subset(2_000), checked_split(False).subset(500)
    _, metrics = fit(RunConfig(epochs=1, threads=1), train, test)
    _, speedrun = fit(preset('speedrun', epochs=1, threads=1, widths='8,16'), train.subset(500), test)
    kernels = kernel_fingerprint()
    print(metrics['weights_sha256'], repr(metrics['history'][-1]['train_loss']), kernels['cpu_capability'],
          kernels['portable'], speedrun['weights_sha256'])
