"""ddgan_core: the Denoising Diffusion GAN method, framework-free (numpy and the standard library).

Schedule and posterior maths (DESIGN 2.1-2.2), the reverse sampling chain, loss specifications,
the closed-form Gaussian-mixture oracle, configurations, datasets and metric maths. Backends
(PyTorch, tinygrad) supply tensors, autograd, networks and an optimiser, and call into here.
"""
