"""Small numba / torch kernels: arrays in, arrays out."""
