#!/usr/bin/env python
"""The seed paper's experiment in one command: k-fold cross-validation of the text-only, speech-only, cat and add
models on KEMDy19/KEMDy20, and its table.

    python examples/run_emotion.py                       # embedded default (--preset sample): sample corpus, CPU
    accelerate launch examples/run_emotion.py \\
        --text_model klue/bert-base --audio_model facebook/wav2vec2-base \\
        --data_dir /data/KEMDy19_v1_3 --output_dir runs/kemdy19     # the paper's preset
    accelerate launch examples/run_emotion.py --preset best --data_dir ... --seeds 1,2,3   # ours, over 3 seeds
    torchrun --nproc_per_node 2 examples/run_emotion.py ...  # data-parallel (gloo on CPU, NCCL on GPUs)

Every option of `transformers.TrainingArguments` works too (`--bf16`, `--gradient_accumulation_steps`, ...); see
`--help`. Rerun the same command with the same `--output_dir` to resume a killed run: finished folds are skipped and
the interrupted one continues from its last checkpoint. A command with other settings is refused there (the error
lists them; `--overwrite_output_dir` starts over). The logic lives in `kemd_emotion.experiment`.
"""

from kemd_emotion.experiment import main

if __name__ == "__main__":
    main()
