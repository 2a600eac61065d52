"""OCR benchmark: the document pipeline per scanned page vs the bare tesseract CLI on the same pages, same run.

- pipeline: `extract_document(bytes, name, limits)` (sniffing, sha256, decode + EXIF + pHash + triage, one
  tesseract `image_to_data` run, field extraction) per page, from the bytes in memory.
- tesseract: `tesseract PAGE stdout` as a subprocess with OMP_THREAD_LIMIT=1, on the same page files.
- photos: `extract_document` on simulated damage photos (JPEG with EXIF; no OCR), documents/s.
Everything runs pinned to one CPU (tesseract children inherit it); pipeline and CLI alternate page by page, best of
`--repeats` per page, so machine noise hits both alike. Pages are the simulator's scans (PNG and JPEG alternately).
Ends with: BENCH ocr pipeline_s_per_page=<x> tesseract_s_per_page=<x> ratio=<pipeline/tesseract> photos_per_s=<n>
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from claimsctl.simulator.entities import claim_number, generate_vin, policy_number
from claimsctl.simulator.landing import ClaimFormInfo, render_damage_photo, render_form_scan
from lambdas.document_processor import ProcessingLimits, extract_document

_LOSS_TYPES = ("collision", "glass", "theft", "weather", "vandalism", "fire")


def form_pages(count: int, seed: int) -> list[tuple[ClaimFormInfo, str, bytes]]:
    """`count` simulated claim-form scans: (what is written on it, file name, bytes)."""
    rng = random.Random(f"bench-ocr/{seed}")
    pages = []
    for i in range(count):
        info = ClaimFormInfo(
            claim_number=claim_number(2026, rng.randrange(10**7)),
            policy_number=policy_number(2026, rng.randrange(10**7)),
            vin=generate_vin(rng, rng.choice(("WVW", "WBA", "VF1", "ZFA", "SAL")), rng.randint(2008, 2025), i),
            registration=f"{rng.randint(10, 99)}-{rng.choice('ABCDEFGH')}{rng.choice('KLMNPRST')}-{rng.randint(10, 99)}",
            vehicle="Volkswagen Golf (2019)",
            loss_local_time=datetime(2026, 3, 1, 8, 0) + timedelta(minutes=rng.randrange(60 * 24 * 60)),
            loss_type=rng.choice(_LOSS_TYPES),
            claimed_amount=Decimal(rng.randint(15_000, 900_000)) / 100,
            description="Rear-ended while waiting at a junction; bumper and tailgate damaged.",
            loss_lat=38.7, loss_lon=-9.1,
        )
        fmt = "PNG" if i % 2 == 0 else "JPEG"
        pages.append((info, f"claim form {i:03d}.{'png' if fmt == 'PNG' else 'jpg'}", render_form_scan(info, rng, fmt)))
    return pages


def photos(count: int, seed: int) -> list[bytes]:
    rng = random.Random(f"bench-ocr/{seed}/photos")
    start = datetime(2026, 3, 1, 9, 0)
    return [render_damage_photo(rng, taken_local=start + timedelta(minutes=i), lat=38.7 + i * 1e-4, lon=-9.1)
            for i in range(count)]


def tesseract_cli(path: Path, env: dict[str, str]) -> str:
    return subprocess.run(["tesseract", str(path), "stdout"], env=env, check=True, capture_output=True).stdout.decode()


def fields_correct(info: ClaimFormInfo, record) -> int:  # noqa: ANN001
    f = record.fields
    return sum((f.claim_number == info.claim_number, f.policy_number == info.policy_number, f.vin == info.vin,
                f.loss_date == info.loss_local_time.date(), info.claimed_amount in f.amounts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=16, help="scanned form pages")
    parser.add_argument("--photos", type=int, default=300, help="damage photos (no OCR)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per page and tool (best kept)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    limits = ProcessingLimits()
    pages = form_pages(args.pages, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ocr-"))
    try:
        paths = []
        for _, name, body in pages:
            paths.append(workdir / name.replace(" ", "_"))
            paths[-1].write_bytes(body)
        # Warm-up: language data into the page cache, pytesseract's version probe, imports.
        extract_document(pages[0][2], pages[0][1], limits)
        tesseract_cli(paths[0], env)

        best_pipeline = [float("inf")] * len(pages)
        best_cli = [float("inf")] * len(pages)
        correct = 0
        for repeat in range(args.repeats):
            for i, ((info, name, body), path) in enumerate(zip(pages, paths)):
                order = ("pipeline", "cli") if (i + repeat) % 2 == 0 else ("cli", "pipeline")
                for which in order:
                    t0 = time.perf_counter()
                    if which == "pipeline":
                        record = extract_document(body, name, limits)
                        best_pipeline[i] = min(best_pipeline[i], time.perf_counter() - t0)
                        if repeat == 0:
                            correct += fields_correct(info, record)
                    else:
                        tesseract_cli(path, env)
                        best_cli[i] = min(best_cli[i], time.perf_counter() - t0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    shots = photos(args.photos, args.seed)
    extract_document(shots[0], "warmup.jpg", limits)
    t0 = time.perf_counter()
    for i, body in enumerate(shots):
        extract_document(body, f"IMG_{i:04d}.jpg", limits)
    photos_per_s = len(shots) / (time.perf_counter() - t0)

    pipeline_s = sum(best_pipeline) / len(pages)
    cli_s = sum(best_cli) / len(pages)
    print(f"{len(pages)} form scans (PNG/JPEG, 1240x1754), best of {args.repeats}; {len(shots)} photos (800x600 JPEG)")
    print(f"{'path':<44}{'s/page':>10}")
    print(f"{'pipeline (extract_document)':<44}{pipeline_s:>10.3f}")
    print(f"{'tesseract CLI (subprocess, OMP_THREAD_LIMIT=1)':<44}{cli_s:>10.3f}")
    print(f"fields right: {correct}/{5 * len(pages)} (claim, policy, VIN, loss date, claimed amount per page)")
    print(f"photos: {photos_per_s:,.0f} documents/s")
    print(f"BENCH ocr pipeline_s_per_page={pipeline_s:.3f} tesseract_s_per_page={cli_s:.3f} "
          f"ratio={pipeline_s / cli_s:.2f} photos_per_s={photos_per_s:.0f}")


if __name__ == "__main__":
    main()
