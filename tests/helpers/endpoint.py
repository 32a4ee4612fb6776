"""A checkpoint's Inference Endpoints handler, loaded as huggingface-inference-toolkit loads it."""

import importlib.util
import os


def load_handler_module(checkpoint):
    """Import `checkpoint/handler.py` as huggingface-inference-toolkit does: a top-level module, folder on sys.path."""
    spec = importlib.util.spec_from_file_location("handler", os.path.join(checkpoint, "handler.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
