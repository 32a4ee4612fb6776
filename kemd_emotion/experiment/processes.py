"""The processes of a run: which one writes files, and how all of them take the same branch.

Every process of a distributed run runs the same loop (each Trainer is data-parallel over all of them); only the
main process writes files, and a choice made from a file (a fold is done, a checkpoint to resume from) is the main
process' choice on every process. With one process every call here is immediate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Processes:
    """This process' place in the run: `is_main` (rank 0) and `world_size`."""

    is_main: bool
    world_size: int

    @classmethod
    def of(cls, args) -> Processes:
        """The processes of `args` (a `TrainingArguments`; reading `process_index` sets the distributed state up)."""
        return cls(is_main=args.process_index == 0, world_size=int(args.world_size))

    def agree(self, value):
        """The main process' `value`, on every process (so that all of them take the same branch)."""
        if self.world_size <= 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def gather(self, value) -> list:
        """Every process' `value`, in rank order, on every process."""
        if self.world_size <= 1:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def wait_for_everyone(self) -> None:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


__all__ = ["Processes"]
