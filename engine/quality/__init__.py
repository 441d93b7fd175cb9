"""Measuring swap quality and comparing models.

split (the held-out frames training never sees), metrics (masked SSIM/PSNR, landmark error, flicker,
sharpness: plain array functions), reconstruct (dst->dst and src->src on held-out crops), frames
(the swap measured on merged held-out destination frames), evaluate (one model: every metric,
recorded in its quality history), compare (several models side by side), perceptual (a VGG feature
loss from locally cached weights).
"""
