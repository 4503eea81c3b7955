#!/usr/bin/env bash
# Runs every fuzz target for 15 s (60 s in all) from the checked-in corpus, on the nightly
# toolchain with cargo-fuzz. New inputs go to a scratch directory, so the corpus stays small.
# A crash fails the run; its input is left in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in meta timing stream replay; do
    mkdir -p "$scratch/$target"
    cargo +nightly fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time=15 -max_len=65536 -rss_limit_mb=1024
done
