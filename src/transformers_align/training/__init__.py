"""Training: arguments, the AlignmentTrainer, the launch set-up, checkpoints and one run end to end."""
