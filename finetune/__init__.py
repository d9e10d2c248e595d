"""Feedback export, LoRA fine-tuning, evaluation gate and adapter promotion."""
