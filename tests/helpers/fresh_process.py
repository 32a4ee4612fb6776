"""A fresh interpreter where kemd_emotion cannot be imported, as on a machine that has only a checkpoint."""

import textwrap

BLOCK_KEMD_EMOTION = textwrap.dedent(
    """
    import json, sys

    class BlockKemdEmotion:  # this process must not find the package, whatever sys.path holds
        def find_spec(self, name, path=None, target=None):
            if name == "kemd_emotion" or name.startswith("kemd_emotion."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

    sys.meta_path.insert(0, BlockKemdEmotion())
    """
)
"""The start of a script for a fresh process where kemd_emotion cannot be imported (trust_remote_code tests)."""
