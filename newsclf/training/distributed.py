"""Data-parallel training under ``paddle.distributed.launch``: which process this is, and
moving values between the processes. Outside the launcher everything here is a no-op."""

from __future__ import annotations

import os

import numpy as np


class Parallel:
    """The data-parallel environment when launched by ``paddle.distributed.launch`` (world
    size > 1), else a single process. Only rank 0 writes files."""

    def __init__(self):
        self.world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
        self.rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        if self.world > 1:
            import paddle.distributed as dist

            dist.init_parallel_env()
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if self.world == 1:
            return value
        import paddle.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather_rows(self, local: np.ndarray, total: int) -> np.ndarray:
        """Concatenate every rank's rows of a strided shard (row i on rank i % world) back
        into input order."""
        if self.world == 1:
            return local
        import paddle
        import paddle.distributed as dist

        per_rank = -(-total // self.world)
        padded = np.zeros((per_rank,) + local.shape[1:], dtype=local.dtype)
        padded[:len(local)] = local
        parts = []
        dist.all_gather(parts, paddle.to_tensor(padded))
        result = np.empty((total,) + local.shape[1:], dtype=local.dtype)
        for rank, part in enumerate(parts):
            rows = len(range(rank, total, self.world))
            result[rank::self.world] = part.numpy()[:rows]
        return result
