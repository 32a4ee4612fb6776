"""The paper's scores as a Hugging Face `evaluate` metric module (`kemd_emotion.py`, with its Space card and app).

The folder is self-contained, as a metric pushed to the Hub must be: `kemd_emotion.py` imports only numpy, datasets and
evaluate. `kemd_emotion.metrics` re-exports its functions and loads it (`load_metric`).
"""
