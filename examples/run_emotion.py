#!/usr/bin/env python
"""The seed paper's experiment in one command: k-fold cross-validation of the text-only, speech-only, cat and add
models on KEMDy19/KEMDy20, and its table.

    python examples/run_emotion.py                       # embedded default: sample corpus, small encoders, CPU
    accelerate launch examples/run_emotion.py \\
        --text_model klue/bert-base --audio_model facebook/wav2vec2-base \\
        --data_dir /data/KEMDy20_v1_2 --output_dir runs/kemdy20     # the paper's setting
    torchrun --nproc_per_node 2 examples/run_emotion.py ...  # data-parallel (gloo on CPU, NCCL on GPUs)

Every option of `transformers.TrainingArguments` works too (`--bf16`, `--gradient_accumulation_steps`, ...); see
`--help`. Rerun with the same `--output_dir` to resume a killed run: finished folds are skipped and the interrupted
one continues from its last checkpoint. The logic lives in `kemd_emotion.experiment`.
"""

from kemd_emotion.experiment import main

if __name__ == "__main__":
    main()
