"""PyTorch backend: the published DDGAN networks and their training and sampling (CUDA first, CPU works).

It supplies tensors, autograd, networks and an optimiser; every coefficient, loss and the sampling
chain come from `ddgan_core` (DESIGN 4). It never imports the tinygrad backend.
"""
