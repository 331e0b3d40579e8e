"""Supervised fine-tuning of a judge on reasoning traces (EGT stage 1)."""
