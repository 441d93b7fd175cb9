"""Merging: paste the model's predicted faces back into the destination frames, then export.

colour (colour transfer), masks (mask building), blend (paste one face into one frame),
settings (the [merge] knobs), merger (frames in, merged frames out), preview (one frame, fast).
"""
