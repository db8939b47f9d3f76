"""Training the embedded models: the resumable flow-matching trainer (`train`), its batches (`data`), checkpoints
(`checkpoint`), the learning-rate schedule (`lr`) and few-step distillation (`distill`)."""
