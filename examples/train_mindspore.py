"""Train a MindSpore network on a torch DataLoader's exact stream, two ways, and prove it saw torch's labels.

Run it: ``python examples/train_mindspore.py``. It

1. builds a torch ``DataLoader`` (shuffled, 2 workers, random augmentation in the workers);
2. records what torch yields for 2 epochs (the reference);
3. ports the loader with ``adapters.to_mindspore`` and trains a small MindSpore network on it with a
   custom ``mindspore.value_and_grad`` loop, epoch after epoch, and then with ``Model.train``;
4. checks that the labels (and images) the network saw are exactly torch's.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

import adapters
import porting

EPOCHS = 2


class Noisy(Dataset):
    """Points with a label; the noise is drawn in the worker from torch's stream (seeded per worker)."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        x = torch.full((4,), float(i)) + torch.randn(4)
        return x, torch.tensor(i % 3, dtype=torch.int32)


def make_loader() -> DataLoader:
    """The user's loader (also a ``torch2ms check`` factory: ``examples/train_mindspore.py:make_loader``)."""
    return DataLoader(Noisy(), batch_size=6, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(7))


def _net():
    from mindspore import nn

    return nn.Dense(4, 3)


def custom_loop(ds) -> list:
    """A ``value_and_grad`` training loop; returns the batches the network was fed."""
    import mindspore as ms
    from mindspore import nn

    net = _net()
    opt = nn.SGD(net.trainable_params(), learning_rate=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, opt.parameters)
    seen = []
    for _ in range(EPOCHS):
        for x, y in ds.create_tuple_iterator(num_epochs=1):  # one iterator per epoch
            loss, grads = grad_fn(x, y.astype(ms.int32))
            opt(grads)
            seen.append((x.asnumpy(), y.asnumpy()))
    return seen


def model_train(ds) -> list:
    """``mindspore.train.Model.train`` (one iterator over all epochs); returns the batches it fed."""
    from mindspore import nn
    from mindspore.train import Callback, Model

    class Seen(Callback):
        def __init__(self):
            self.batches = []

        def on_train_step_end(self, run_context):
            x, y = run_context.original_args().train_dataset_element
            self.batches.append((x.asnumpy(), y.asnumpy()))

    net, seen = _net(), Seen()
    model = Model(net, loss_fn=nn.CrossEntropyLoss(), optimizer=nn.SGD(net.trainable_params(), 0.01))
    model.train(EPOCHS, ds, callbacks=[seen], dataset_sink_mode=False)
    return seen.batches


def main() -> int:
    porting.seed_everything(0)
    loader = make_loader()
    ds = adapters.to_mindspore(loader)  # a snapshot: torch below runs from the same state
    # torch's reference for the 2 x EPOCHS epochs the port will train on, taken first: torch's workers
    # are forked processes, and forking this process after MindSpore has run ops in it is not safe.
    torch_batches = [[(x.numpy(), y.numpy()) for x, y in loader] for _ in range(2 * EPOCHS)]

    fed = custom_loop(ds)  # the port's epochs 0 and 1
    porting.assert_equivalent(fed, [b for epoch in torch_batches[:EPOCHS] for b in epoch], rtol=0, atol=0)
    print(f"value_and_grad loop: {len(fed)} batches, images and labels bit-identical to torch's")

    fed = model_train(ds)  # Model.train continues with the port's next epochs, 2 and 3
    porting.assert_equivalent(fed, [b for epoch in torch_batches[EPOCHS:] for b in epoch], rtol=0, atol=0)
    print(f"Model.train: {len(fed)} batches, images and labels bit-identical to torch's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
