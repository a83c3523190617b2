#!/usr/bin/env bash
# The start every tests/lab/ops/*.sh shares, sourced with the part's name:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../ops-common.sh" NAME
#
# Without root it says the part is skipped and exits 0 (the script with it). Otherwise:
# LAB_PREFIX (default fops-NAME, cut to six letters as ops-tests.sh cuts it), LAB (this
# directory), lab.sh and suite.sh sourced, WORK a fresh scratch directory.
OPS_NAME=$1
if [[ $(id -u) -ne 0 ]]; then
    echo "ops/$OPS_NAME skipped: needs root (network namespaces, nftables, NFQUEUE)"
    exit 0
fi
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_PREFIX=${LAB_PREFIX:-fops-${OPS_NAME:0:6}}
# shellcheck source=tests/lab/lab.sh
source "$LAB/lab.sh"
WORK=$(mktemp -d "/tmp/ftp-alg-ops-$OPS_NAME.XXXXXX") || exit 1
# shellcheck source=tests/lab/suite.sh
source "$LAB/suite.sh"
