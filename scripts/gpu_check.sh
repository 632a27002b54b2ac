#!/usr/bin/env bash
# Issue 7's GPU check: the CUDA tests of the fast path, then sampling and training speed of the
# CIFAR-10 preset on one CUDA GPU, within 8 minutes (a budget of 470 s shared by the sections).
#
# How to run it with the device tool (from the repository root, which is where the tool runs):
#     run(command="bash scripts/gpu_check.sh", timeout_s=540)
#   carry: nothing. Every dependency is in the device image (torch, numpy, typer, rich, safetensors,
#   pillow, matplotlib, pytest, hypothesis, scipy: KINDS.md's package list), so nothing is installed
#   and the project runs from the checkout through PYTHONPATH. Should the image lose one of them:
#   here, `echo /.whl/ >> .git/info/exclude`, download the wheel as the device README says
#   (python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
#    --platform manylinux_2_17_x86_64 ... -d .whl NAME==VERSION), and run with carry [".whl"]:
#   this script then installs .whl/*.whl into /tmp/site without the network.
# Sections: tests sample train profile (default: all, in that order), e.g. `bash scripts/gpu_check.sh sample`:
# a full run leaves a 15-minute device budget room to rerun one section, not the whole script.
# Time: the whole script keeps within GPU_CHECK_BUDGET seconds (default 470: the issue asks for 8 minutes). A
# section stops at its own limit, GPU_CHECK_LIMIT_TESTS or _SAMPLE (defaults 90 and 160), or when
# the budget runs out; train and the last section asked for get whatever is left (train: about
# 195 s after a full run of tests and sample, more when they finish early; compiling the training
# graphs, the R1 step's included, is most of it, so the fast path is measured first; profile then
# gets what train leaves). Compiled kernels are cached under /tmp (TORCHINDUCTOR_CACHE_DIR,
# TRITON_CACHE_DIR), which the later sections and a rerun on the same machine reuse. A failing
# or timed-out section is reported and the next one runs; a failing measurement inside a section
# is recorded as an error row and the section goes on.
# The tests print each test's name as it ends (-v), quick ones first, so a section stopped at its limit
# still says which passed. Profile (diagnostics, so last: it gets what train leaves) shows where one
# compiled chain and one fast training step spend their GPU time (kernel time by kind, the longest
# kernels: the report's "where the GPU time goes"); it runs in a process of its own because the
# profiler slows whatever runs after it in the same process.
# Results: $OUT/gpu_check.json (every row), $OUT/gpu_check.md (the tables, also printed last),
# $OUT/gpu_check.log (everything printed). Without $OUT (by hand): ./gpu_check_out/.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
ROWS=$OUT/rows.jsonl SECTIONS=$OUT/sections.jsonl LOG=$OUT/gpu_check.log
: >"$ROWS"; : >"$SECTIONS"; : >"$LOG"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/ddgan_gpu_check/inductor}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/ddgan_gpu_check/triton}

if ! python3 -c "import numpy, typer, rich, safetensors, PIL, pytest" 2>>"$LOG"; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        echo "installing carried wheels from .whl/ into /tmp/site" | tee -a "$LOG"
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            && export PYTHONPATH=$PYTHONPATH:/tmp/site
    else
        echo "gpu_check: a dependency is missing and no wheels were carried in .whl/ (see this script's header)" | tee -a "$LOG"
    fi
fi

START=$(date +%s) BUDGET=${GPU_CHECK_BUDGET:-470} REPORT_SECONDS=10

section() {  # section NAME LIMIT COMMAND...: run within min(LIMIT, what the budget leaves), log, record the exit status
    local name=$1 limit=$2 begin rc left
    shift 2
    left=$(( START + BUDGET - REPORT_SECONDS - $(date +%s) ))
    (( limit > left )) && limit=$left
    if (( limit < 1 )); then
        echo "!!! section $name skipped: the time budget is spent" | tee -a "$LOG"
        echo "{\"section\": \"$name\", \"rc\": 124, \"seconds\": 0}" >>"$SECTIONS"
        return
    fi
    echo "=== $name (limit ${limit}s) ===" | tee -a "$LOG"
    begin=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || echo "!!! section $name FAILED with exit status $rc$([ "$rc" -eq 124 ] && echo ' (time limit)')" | tee -a "$LOG"
    echo "{\"section\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - begin ))}" >>"$SECTIONS"
}

wanted=(${*:-tests sample train profile})
last=${wanted[${#wanted[@]}-1]}
limit_of() {  # the section's own limit; the last one asked for runs until the budget is spent
    [ "$1" = "$last" ] && { echo "$BUDGET"; return; }
    case $1 in tests) echo "${GPU_CHECK_LIMIT_TESTS:-90}" ;; sample) echo "${GPU_CHECK_LIMIT_SAMPLE:-160}" ;; *) echo "$BUDGET" ;; esac
}
section env 60 python3 benchmarks/gpu_check.py env --rows "$ROWS"
for name in "${wanted[@]}"; do
    case $name in
        tests) section tests "$(limit_of tests)" python3 -m pytest tests/test_torch_device_data.py tests/test_fast_path.py -k cuda -v -rs -p no:cacheprovider ;;
        sample) section sample "$(limit_of sample)" python3 benchmarks/gpu_check.py sample --rows "$ROWS" ;;
        train) section train "$(limit_of train)" python3 benchmarks/gpu_check.py train --rows "$ROWS" ;;
        profile) section profile "$(limit_of profile)" python3 benchmarks/gpu_check.py profile --rows "$ROWS" ;;
        *) echo "gpu_check: unknown section '$name' (tests, sample, train, profile)" | tee -a "$LOG" ;;
    esac
done
python3 benchmarks/gpu_check.py report --rows "$ROWS" --sections "$SECTIONS" \
    --json "$OUT/gpu_check.json" --markdown "$OUT/gpu_check.md" 2>&1 | tee -a "$LOG"
