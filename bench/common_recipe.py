"""The recipe most tutorials use, as the baseline of the benchmark: torchvision's dataset object with `ToTensor`,
a `DataLoader(shuffle=True)`, and the usual loop. Same model, batch size, optimizer settings and schedule as
affine-train.

    python bench/common_recipe.py [--epochs 3] [--data FOLDER]
"""
import argparse, time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.datasets import FashionMNIST
from torchvision.transforms import ToTensor

from affine_nb.integrity import check_files
from affine_nb.model import make_model
from affine_nb.config import RunConfig


def common_loader(root, train: bool, batch_size: int) -> DataLoader:
    "FashionMNIST through PIL and ToTensor, one image at a time, batched by a DataLoader."
    return DataLoader(FashionMNIST(root, train=train, transform=ToTensor()), batch_size=batch_size, shuffle=train)


def common_train_epoch(model, loader, optimizer, loss_fn=nn.CrossEntropyLoss()) -> None:
    model.train()
    for images, labels in loader:
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def common_optimizer(model, cfg) -> torch.optim.Optimizer:
    "AdamW as tutorials create it: PyTorch's default implementation (foreach), one parameter group."
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def common_evaluate(model, loader) -> float:
    model.eval()
    correct = sum((model(images).argmax(1) == labels).sum().item() for images, labels in loader)
    return correct / len(loader.dataset)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--data', default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    cfg = RunConfig(epochs=args.epochs)
    cfg.prepare()
    root = check_files(args.data).parent.parent
    train, test = common_loader(root, True, cfg.batch_size), common_loader(root, False, 1000)
    model = make_model()
    optimizer = common_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_epochs, gamma=cfg.lr_decay)
    for epoch in range(cfg.epochs):
        common_train_epoch(model, train, optimizer)
        scheduler.step()
        print(f"epoch {epoch + 1}: test accuracy {common_evaluate(model, test):.4f}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == '__main__':
    main()
