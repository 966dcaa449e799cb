"""A short portable fit for the vendor test: one epoch on the first 2 000 training and 500 test images, one thread.
Prints the weights digest, the final train loss, and the kernels ATen ran. Run it in portable mode (affine-portable)."""
from affine_nb.data import load_split
from affine_nb.repro import kernel_fingerprint
from affine_nb.recipe import TrainConfig
from affine_nb.training import fit

if __name__ == '__main__':
    _, metrics = fit(TrainConfig(epochs=1, threads=1), load_split(True).subset(2_000), load_split(False).subset(500))
    kernels = kernel_fingerprint()
    print(metrics['weights_sha256'], repr(metrics['history'][-1]['train_loss']), kernels['cpu_capability'], kernels['portable'])
