"""Human pose estimation: the CMU Acclaim reader, the 17-joint skeleton, cameras, metrics and 2D→3D lifters.

This package imports torch, numpy and scipy only (and :mod:`helpers.models.vit` for the attention blocks);
no dataset registry, no training framework.
"""
