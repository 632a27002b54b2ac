"""The tinygrad backend: the DDGAN networks, training step and sampling in tinygrad (no PyTorch)."""
