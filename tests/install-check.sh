#!/usr/bin/env bash
# `make install` into a scratch DESTDIR, then check the tree: the binary runs, a man page per
# subcommand, the completions, every ruleset, every systemd unit of dist/ (its ExecStart on the
# installed binary), the example config in the doc directory and in etc/; a second install
# keeps an edited etc/ config; `make uninstall` leaves only that config. No root needed.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "install-check: FAIL: $*" >&2; exit 1; }
make_() { make --no-print-directory "$@" DESTDIR="$dest" PREFIX=/usr/local >/dev/null; }

make_ install
usr=$dest/usr/local

version=$("$usr/bin/ftp-alg" --version) || fail "the installed binary does not run"
[[ $version == "ftp-alg "* ]] || fail "ftp-alg --version printed '$version'"

pages=(target/man/*.1)
((${#pages[@]} >= 4)) || fail "make man wrote ${#pages[@]} pages"
for page in "${pages[@]}"; do
    [[ -s $usr/share/man/man1/${page##*/} ]] || fail "man page ${page##*/} not installed"
done
for page in ftp-alg.1 ftp-alg-run.1 ftp-alg-replay.1 ftp-alg-rules.1; do
    [[ -s $usr/share/man/man1/$page ]] || fail "man page $page missing"
done
for file in share/bash-completion/completions/ftp-alg share/zsh/site-functions/_ftp-alg \
    share/fish/vendor_completions.d/ftp-alg.fish; do
    [[ -s $usr/$file ]] || fail "completion $file missing"
done

for rule in rules/*; do
    cmp -s "$rule" "$usr/share/ftp-alg/rules/${rule##*/}" || fail "ruleset ${rule##*/} not installed"
done
[[ -x $usr/share/ftp-alg/rules/iptables-ipset.sh ]] || fail "ruleset scripts are not executable"

units=0
for unit in dist/*.service; do
    [[ -e $unit ]] || continue
    installed=$usr/lib/systemd/system/${unit##*/}
    [[ -s $installed ]] || fail "unit ${unit##*/} not installed"
    if grep -q 'bin/ftp-alg' "$unit"; then
        grep -q "/usr/local/bin/ftp-alg" "$installed" || fail "${unit##*/} does not run /usr/local/bin/ftp-alg"
    fi
    units=$((units + 1))
done

cmp -s dist/ftp-alg.toml "$usr/share/doc/ftp-alg/ftp-alg.toml" || fail "example config not in the doc directory"
cmp -s dist/ftp-alg.toml "$dest/etc/ftp-alg/ftp-alg.toml" || fail "example config not in etc/ftp-alg"

echo 'timeout = 60' > "$dest/etc/ftp-alg/ftp-alg.toml"
make_ install
[[ $(cat "$dest/etc/ftp-alg/ftp-alg.toml") == 'timeout = 60' ]] || fail "a second install overwrote the config"

make_ uninstall
left=$(cd "$dest" && find . -type f | sort)
[[ $left == './etc/ftp-alg/ftp-alg.toml' ]] || fail "make uninstall left: $left"

echo "install-check: ok (${#pages[@]} man pages, 3 completions, $(ls rules | wc -l) rulesets, $units unit(s), config; uninstall clean)"
