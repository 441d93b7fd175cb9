"""Measuring swap quality and comparing models.

metrics (masked SSIM/PSNR, landmark error, flicker, sharpness: plain array functions), reconstruct
(dst->dst and src->src on held-out crops), frames (the swap measured on merged held-out destination
frames), evaluate (one model: every metric, recorded in its quality history), compare (several models
side by side), training (what the train job measures while it trains), expression (does the swap follow
the destination's mouth, eyes and pose: swap error over reconstruction error), verdict (the sentences
that say what the figures mean, for every client). The held-out frames themselves
are chosen in ``engine.faces.split``, and the perceptual loss is ``engine.train.perceptual``: training
uses both, and training sits below quality.
"""
