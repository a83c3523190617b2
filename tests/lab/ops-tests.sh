#!/usr/bin/env bash
# The live operations suite: every script in tests/lab/ops/ (metrics, the event log,
# `ftp-alg check`, `watch`, the systemd units, install), each in its own lab (namespaces
# ${LAB_PREFIX}-*, a prefix per script). Each script prints `ok|FAIL|n/a NAME (details)`
# lines and exits non-zero when a case failed. Run by `make test`; needs root (skips itself
# otherwise).
#
#   bash tests/lab/ops-tests.sh            # every script
#   OPS_ONLY=check bash tests/lab/ops-tests.sh   # tests/lab/ops/check.sh alone
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "ops tests skipped: they need root (network namespaces, nftables)"
    exit 0
fi

start=$(date +%s)
failed=() passed=()
for script in "$HERE"/ops/*.sh; do
    [[ -e $script ]] || continue
    name=$(basename "$script" .sh)
    [[ -n ${OPS_ONLY:-} && " $OPS_ONLY " != *" $name "* ]] && continue
    echo "== ops/$name"
    t0=$(date +%s)
    if LAB_PREFIX="fops-${name:0:6}" timeout --kill-after=10 "${OPS_SCRIPT_BUDGET:-300}" bash "$script"; then
        passed+=("$name")
    else
        failed+=("$name")
    fi
    echo "== ops/$name: $(($(date +%s) - t0)) s"
done
echo "== ops tests: ${#passed[@]} script(s) passed, ${#failed[@]} failed${failed:+ (${failed[*]})} in $(($(date +%s) - start)) s"
((${#failed[@]} == 0))
