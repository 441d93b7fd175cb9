"""Content Credentials benchmark: what signing adds to an export (engine.media.credentials).

    python -m engine.bench c2pa [--json] [--repeat 3] [--seconds 10]
    swapwizard bench c2pa --json

Three measurements, each the median of ``--repeat`` runs, with the local identity made in a temp folder:

1. ``sample``: the export step of a merge of the shipped destination sample (512x512, 25 fps, 3 s, with
   audio): ``join_segments`` of its video (stream copy, audio copy, label) without and with signing
   (``sample_export_s``, ``sample_export_signed_s``), and the signing step alone on that export's file
   (``sample_sign_s``: XMP box, sign into a second temp file, fsync, with c2pa's check of what it
   wrote), which is what signing adds; the difference of the two whole exports is within the noise of
   starting ffmpeg on a busy machine.
2. ``png``: one labelled PNG frame encoded without and with signing, at the sample's size and at 1080p
   (the ``--png`` output pays this per frame); 5 x ``--repeat`` runs each, interleaved (a PNG is quick).
3. ``1080p``: a ``--seconds`` long 1080p H.264 clip (the sample scaled and padded to 1920x1080, looped,
   with film grain so that its bitrate is that of camera footage, CRF 18, with audio) made with real
   ffmpeg, signed as a file; the time per MB gives the estimate for a 1080p minute
   (``min_1080p_sign_s``, at the clip's bitrate; ``min_1080p_sign_s_at_50mbps`` for a camera-original
   bitrate), scaled by size: signing hashes the whole file twice (to sign, and to check the signature
   written), both linear in its size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.bench.timing import Stopwatch, median_time, show

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "dst.mp4"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench c2pa", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per figure (the median is kept).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of the generated 1080p clip.")
    parser.add_argument("--grain", type=int, default=4, help="Film grain of the 1080p clip (ffmpeg noise "
                        "strength: 3, 4, 5 give about 5, 15, 37 Mbit/s at CRF 18).")
    args = parser.parse_args(argv)

    import numpy as np

    from engine.media import credentials as cr
    from engine.media.encode import ffmpeg_exe, join_segments, png_with_text, synthetic_label

    figures: dict[str, object] = {"repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="swapwizard-bench-c2pa-") as tmp:
        folder = Path(tmp)
        os.environ["SWAPWIZARD_C2PA_DIR"] = str(folder / "identity")
        with Stopwatch() as watch:
            identity = cr.local_identity()
        figures["identity_create_s"] = round(watch.seconds, 4)
        credentials = cr.Credentials(identity, models=[{"name": "default", "iteration": 100000}],
                                     consent_date="2026-01-01T00:00:00+0000")
        figures["check_s"] = round(median_time(credentials.check, args.repeat), 4)
        label = synthetic_label()

        # 1. The sample's export step, without and with signing.
        segment = folder / "segment.mp4"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(SAMPLE), "-an",
                        "-c:v", "copy", str(segment)], check=True)
        plain = median_time(lambda: join_segments([segment], folder / "plain.mp4", audio_source=SAMPLE,
                                                   label=label), args.repeat)
        signed = median_time(lambda: join_segments([segment], folder / "signed.mp4", audio_source=SAMPLE,
                                                    label=label, credentials=credentials), args.repeat)
        exported = (folder / "plain.mp4").read_bytes()

        def sign_sample() -> None:
            (folder / "work.mp4").write_bytes(exported)
            credentials.sign_file(folder / "work.mp4", folder / "sample_signed.mp4", title="result.mp4")

        copy_only = median_time(lambda: (folder / "work.mp4").write_bytes(exported), args.repeat)
        figures.update({"sample_bytes": len(exported), "sample_export_s": round(plain, 4),
                        "sample_export_signed_s": round(signed, 4),
                        "sample_sign_s": round(median_time(sign_sample, args.repeat) - copy_only, 4)})

        # 2. One PNG frame, at the sample's size and at 1080p.
        rng = np.random.default_rng(0)
        for name, shape in (("png_512", (512, 512, 3)), ("png_1080p", (1080, 1920, 3))):
            image = np.clip(rng.normal(128, 40, shape), 0, 255).astype(np.uint8)
            bare, with_c2pa = [], []
            for _ in range(5 * args.repeat):
                bare.append(median_time(lambda image=image: png_with_text(image, label), 1))
                with_c2pa.append(median_time(lambda image=image, name=name: png_with_text(
                    image, label, credentials=credentials, title=f"{name}.png"), 1))
            figures[f"{name}_s"] = round(statistics.median(bare), 4)
            figures[f"{name}_signed_s"] = round(statistics.median(with_c2pa), 4)
            figures[f"{name}_sign_s"] = round(statistics.median(with_c2pa) - statistics.median(bare), 4)

        # 3. A generated 1080p clip, signed as a file; scaled to a minute by size.
        clip = folder / "clip_1080p.mp4"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1",
                        "-i", str(SAMPLE), "-t", f"{args.seconds}", "-vf",
                        f"scale=1080:1080,pad=1920:1080:420:0,noise=alls={args.grain}:allf=t", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "18", "-c:a", "aac", "-movflags", "+faststart", str(clip)], check=True)
        size = clip.stat().st_size

        def sign_clip() -> None:
            work = folder / "work.mp4"
            work.write_bytes(clip.read_bytes())  # sign_file appends the XMP box to its source
            credentials.sign_file(work, folder / "clip_signed.mp4", title="result.mp4")

        copy_only = median_time(lambda: (folder / "work.mp4").write_bytes(clip.read_bytes()), args.repeat)
        clip_sign = median_time(sign_clip, args.repeat) - copy_only
        per_mb = clip_sign / (size / 1e6)
        minute_bytes = size * 60.0 / args.seconds
        figures.update({"clip_seconds": args.seconds, "clip_bytes": size,
                        "clip_mbit_s": round(size * 8 / args.seconds / 1e6, 2), "clip_sign_s": round(clip_sign, 4),
                        "sign_s_per_mb": round(per_mb, 5), "min_1080p_bytes_est": int(minute_bytes),
                        "min_1080p_sign_s": round(per_mb * minute_bytes / 1e6, 3),
                        "min_1080p_sign_s_at_50mbps": round(per_mb * 50 / 8 * 60, 3)})
        found = cr.read_credentials(folder / "clip_signed.mp4")
        figures["clip_verified"] = bool(found["signed"] and found["content_intact"])
        figures["verify_1080p_clip_s"] = round(median_time(
            lambda: cr.read_credentials(folder / "clip_signed.mp4"), args.repeat), 4)

    show(figures, args.json, "{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
