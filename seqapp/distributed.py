"""Several processes under torchrun: nccl on GPUs, gloo on the CPU. One process when not launched so."""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_flag(self, flag: bool, device: torch.device) -> bool:
        return bool(self.broadcast_value(float(flag), device))

    def broadcast_value(self, value: float, device: torch.device) -> float:
        """Rank 0's value on every rank (one clock for a time budget, one decision to stop)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.broadcast(t, src=0)
        return float(t.item())


def init(device_name: str) -> Dist:
    """Join the process group torchrun set up, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# a process that exits with its gloo group alive can abort in the interpreter's teardown (SIGABRT;
# pytorch/pytorch#179291): whoever trains, the group ends before that (registered once; a no-op without a group)
atexit.register(shutdown)
