"""Matrix factorisation models: SVD family, NMF, PMF, FM (ratings) and ALS, BPR (implicit)."""
