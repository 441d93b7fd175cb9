"""What the training loop needs from torch.distributed, and a no-op for a single process.

Ranks agree on every decision (stop, save, preview, new target) at the same iteration: each
decision is an all-reduce (max) of small numbers, so a SIGTERM or cancel seen by any rank stops all.
JSON gathered from every rank (sampler states for a checkpoint) travels as uint8 tensors: no pickle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        """Under torchrun: join the process group (NCCL on GPUs, gloo on the CPU)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend)
        return cls(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            torch_dist.all_reduce(tensor)
            tensor = tensor / self.world
        return tensor

    def agree(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise maximum over ranks."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return t.tolist()

    def gather_json(self, value: object, device: torch.device) -> list[object]:
        if not self.enabled:
            return [value]
        data = torch.tensor(list(json.dumps(value).encode("utf-8")), dtype=torch.uint8, device=device)
        sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(self.world)]
        torch_dist.all_gather(sizes, torch.tensor([data.numel()], device=device))
        longest = int(max(s.item() for s in sizes))
        padded = torch.zeros(longest, dtype=torch.uint8, device=device)
        padded[: data.numel()] = data
        chunks = [torch.zeros(longest, dtype=torch.uint8, device=device) for _ in range(self.world)]
        torch_dist.all_gather(chunks, padded)
        return [json.loads(bytes(c[: int(s.item())].tolist()).decode("utf-8")) for c, s in zip(chunks, sizes)]

    def broadcast_bytes(self, data: bytes | None, device: torch.device) -> bytes:
        """Rank 0's ``data`` on every rank (others pass None), as a uint8 tensor: no pickle."""
        if not self.enabled:
            return data or b""
        size = torch.tensor([len(data) if self.main and data is not None else 0], dtype=torch.long, device=device)
        torch_dist.broadcast(size, 0)
        buffer = (torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if self.main and data
                  else torch.zeros(int(size.item()), dtype=torch.uint8, device=device))
        if int(size.item()):
            torch_dist.broadcast(buffer, 0)
        return bytes(buffer.cpu().numpy().tobytes())

    def broadcast_json(self, value: object, device: torch.device) -> object:
        """Rank 0's JSON ``value`` on every rank."""
        data = self.broadcast_bytes(json.dumps(value).encode("utf-8") if self.main else None, device)
        return json.loads(data.decode("utf-8"))

    def close(self, finished: bool = False) -> None:
        """Leave the process group. ``finished``: every rank ended the run normally, so they first wait
        for each other (rank 0 saves and measures after the last step while the others are done): no
        rank tears its connections down while another still works."""
        if self.enabled and torch_dist.is_initialized():
            if finished:
                torch_dist.barrier()
            torch_dist.destroy_process_group()
