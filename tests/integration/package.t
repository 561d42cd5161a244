#!/bin/bash
# The Debian package: built from the tracked files of this tree with
# dpkg-buildpackage, checked by lintian (errors fail; warnings are shown), installed
# with apt, and run from the installed paths: --version, recipes, bash completion and
# the demo. Removed again at the end, the machine as it was.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP installing a package needs root"; exit 0; }
if dpkg-query -W -f='${Status}' tend 2>/dev/null | grep -q 'install ok installed'; then
  echo "1..0 # SKIP a tend package is installed on this machine already; not touching it"; exit 0
fi
fresh_home
T=$(harness_tmp)/package
mkdir -p "$T/src/tend"
git ls-files -z | rsync -a --from0 --files-from=- ./ "$T/src/tend/"
cp -a .git "$T/src/tend/.git" # the version and commit tend --version gives
trap 'dpkg -r tend >/dev/null 2>&1; _harness_cleanup' EXIT

(cd "$T/src/tend" && dpkg-buildpackage -us -uc -b) > "$T/build.log" 2>&1; rc=$?
is "$rc" 0 "dpkg-buildpackage -us -uc -b builds the package"
[ "$rc" = 0 ] || { tail -20 "$T/build.log" | sed 's/^/# /'; bail "no package"; }
deb=$(ls "$T"/src/tend_*_"$(dpkg --print-architecture)".deb)
lint=$(lintian --suppress-tags running-as-root "$T"/src/tend_*.changes 2>&1)
is "$(printf '%s\n' "$lint" | grep -c '^E: ')" 0 "lintian finds no error"
printf '%s\n' "$lint" | grep -E '^[WIN]: ' | sed 's/^/# lintian: /'
like "$(dpkg-deb -c "$deb")" "./usr/bin/tend" "the package holds the binary"
like "$(dpkg-deb -c "$deb")" "./usr/share/man/man1/tend.1" "... its man page"
like "$(dpkg-deb -c "$deb")" "./usr/share/bash-completion/completions/tend" "... bash completion"

ok "apt installs it" sh -c "apt-get install -y -q --no-install-recommends '$deb' >'$T/apt.log' 2>&1"
is "$(command -v tend)" "/usr/bin/tend" "tend is on the PATH"
like "$(tend --version)" "^tend [0-9]+\\.[0-9]+ \\(" "/usr/bin/tend --version"
like "$(tend recipes)" "backup +Snapshot files and database" "tend recipes lists the bundled recipes"
like "$(bash -c '. /usr/share/bash-completion/completions/tend; COMP_WORDS=(tend clo); COMP_CWORD=1; _tend; echo "${COMPREPLY[*]}"')" \
  "^clone$" "the installed completion completes a recipe"
out=$(TEND_DEMO_DIR="$T/demo" /usr/share/tend/demo 2>&1); rc=$?
is "$rc" 0 "the demo runs from the installed paths"
like "$out" "tend clone demo demo-copy.*files: the same" "... through to the compare"
ok "dpkg -r removes it" sh -c "dpkg -r tend >/dev/null 2>&1"
ok "... and tend is gone" sh -c "! command -v tend"
done_testing
