#!/bin/bash
# The torture tree: hard-link groups, a FIFO, a socket and a device node (as root), names
# that are not UTF-8 and every awkward name, a 255-byte name, a 3,000-byte path,
# nanosecond mtimes, owners other than the login's (as root), two sparse files (one all
# hole), the web root's own mode, owner and mtime, and a web root that is a symlink
# (current -> releases/r1). It goes through backup, an in-place restore, a restore into
# a blank copy, a clone and export + import, and a tree walker (tests/harness/
# tree-walk.py) compares type, mode, owner, size, mtime to the nanosecond, content, link
# targets, hard-link groups and holes after each. Only the socket cannot travel (tar
# cannot carry one): a copy says so by name.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
fresh_home
T=$(harness_tmp)
walk() { /usr/bin/python3 tests/harness/tree-walk.py "$1"; }
host="$SSHD_URL"

# The tree, under a deploy layout: the web root is a symlink to a release.
deploy=$T/deploy
mkdir -p "$deploy/releases/r1"
ln -s releases/r1 "$deploy/current"
w=$deploy/releases/r1
mkdir -p "$w/lib/deep" "$w/uploads"
echo '<?php echo "torture";' > "$w/index.php"
echo 'shared bytes' > "$w/lib/one.txt"; ln "$w/lib/one.txt" "$w/lib/two.txt"; ln "$w/lib/one.txt" "$w/uploads/three.txt"
# byte order puts lib.d/ and lib.txt between lib and lib/...: tar must not (lib's mtime),
# and the group's first name by byte order (lib.d/four.txt) is not the first tar writes
mkdir "$w/lib.d"; ln "$w/lib/one.txt" "$w/lib.d/four.txt"; printf 'sibling' > "$w/lib.txt"
printf 'not utf-8' > "$w/uploads/"$'\xff\xfe'
printf 'utf-8' > "$w/uploads/café-€.txt"
printf 'newline' > "$w/uploads/a"$'\n'"b"
printf 'tab' > "$w/uploads/a"$'\t'"b"
printf 'dash' > "$w/uploads/-rf"
printf 'subst' > "$w/uploads/\$(id>pwned)\`id>pwned2\`"
printf 'backslash' > "$w/uploads/back\\slash\\\\n"
printf 'quotes' > "$w/uploads/it's \"quoted\""
long=$(printf 'n%.0s' $(seq 1 255))
printf 'long name' > "$w/uploads/$long"
deep=$w/lib/deep
for i in $(seq 1 15); do deep=$deep/$(printf 'd%.0s' $(seq 1 200)); done
mkdir -p "$deep" && printf 'deep' > "$deep/file.txt"
ln -s ../index.php "$w/uploads/to-index"
ln -s /etc/hostname "$w/uploads/absolute-link"
mkfifo "$w/uploads/queue"
/usr/bin/python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$w/uploads/app.sock"
[ "$(id -u)" -eq 0 ] && mknod "$w/uploads/null-device" c 1 3
head -c 1000 /dev/urandom > "$w/uploads/holes.bin"; truncate -s 50M "$w/uploads/holes.bin"; printf end >> "$w/uploads/holes.bin"
truncate -s 20M "$w/uploads/all-hole.bin"
if [ "$(id -u)" -eq 0 ]; then # owners other than the login's, as a web server's uploads have
  chown 33:33 "$w/uploads/café-€.txt"; chown 1234:5678 "$w/uploads/-rf"; chown -h 33:33 "$w/uploads/to-index"
  chown 33:33 "$w/uploads"; chown 1234:1234 "$w"
fi
touch -h -d '2021-06-01 12:34:56.123456789' "$w/index.php" "$w/uploads/to-index"
touch -d '2020-02-02 02:02:02.987654321' "$w/lib/one.txt"
chmod 750 "$w"; chmod 640 "$w/uploads/-rf"; chmod 711 "$w/lib"
touch -d '2019-09-09 09:09:09.5' "$w"
ok "the tree has a 3,000-byte path" test "$(printf '%s' "$deep/file.txt" | wc -c)" -gt 3000
before=$(walk "$w")

"$TEND" instance add src --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$deploy/current" >/dev/null 2>&1
"$TEND" host trust src >/dev/null 2>&1
out=$("$TEND" --quiet backup src 2>&1); rc=$?
is "$rc" 0 "the torture tree backs up"
[ "$rc" = 0 ] || diag "$out"
ok "... and its 70 MB of holes did not cross (sent under 1 MB)" \
  test "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT sent_bytes FROM snapshots ORDER BY id DESC LIMIT 1")" -lt 1000000
names() { sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM manifest_files WHERE manifest_id = (SELECT manifest_id FROM snapshots ORDER BY id DESC LIMIT 1) $1"; }
is "$(names "AND hardlink IS NOT NULL")" 3 "... its hard-link group is recorded (three other names of lib.d/four.txt)"
is "$(names "AND type IN ('fifo', 'socket', 'device')")" "$([ "$(id -u)" -eq 0 ] && echo 3 || echo 2)" "... and its FIFO, socket and device node"
out=$("$TEND" verify src 2>&1); rc=$?
like "$rc:$out" "^0:.*all intact" "verify finds every object and every path restorable"

# compare TREE LABEL [copy]: the walk of TREE is the source's. With a third argument the
# socket is left out: a copy cannot have it (the app that listens on it makes it).
compare() {
  local got want diff skip='^$'
  [ -n "${3:-}" ] && skip=' socket '
  got=$(walk "$1" | grep -Ev "$skip")
  want=$(printf '%s\n' "$before" | grep -Ev "$skip")
  diff=$(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | head -20)
  is "$diff" "" "$2: no difference in type, mode, owner, size, mtime (ns), content, links, hard-link groups, holes"
  is "$(walk "$1" | grep -c ' sparse ')" 2 "$2: both sparse files still have holes"
  ok "$2: the tree takes about the source's disk space, not 70 MB more (holes not filled)" \
    test "$(du -sk "$1" | cut -f1)" -lt "$(( $(du -sk "$w" | cut -f1) + 1024 ))"
}

# 0. A restore drill here: the tree restored into a scratch directory and compared.
out=$("$TEND" verify src latest --restore-to "$T/drill" 2>&1); rc=$?
like "$rc:$out" "^0:.*the tree matches the manifest" "a restore drill of the torture tree matches its manifest"
compare "$T/drill/files" "restore drill" copy

# 1. In place, over damage: the link stays a link, the tree the snapshot's.
rm "$w/lib/two.txt"; rm "$w/uploads/"$'\xff\xfe'; echo changed > "$w/index.php"; chmod 755 "$w"
out=$("$TEND" --quiet restore src 2>&1); rc=$?
is "$rc" 0 "an in-place restore of the torture tree"
[ "$rc" = 0 ] || diag "$out"
ok "the web root is still a symlink to the release" test -L "$deploy/current" -a "$(readlink "$deploy/current")" = releases/r1
compare "$deploy/current/" "in place"
ok "the live socket and device node were kept" test -S "$w/uploads/app.sock"
ok "nothing ran from a name" test -z "$(find "$T" / -maxdepth 1 -name 'pwned*' 2>/dev/null)" -a -z "$(find "$deploy" -name 'pwned*')"

# 2. Into a blank copy (restore --to), 3. a clone, 4. export + import + restore.
mkdir -p "$T/copies"
"$TEND" instance add copy --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$T/copies/site" >/dev/null 2>&1
out=$("$TEND" --quiet restore src --to copy 2>&1); rc=$?
is "$rc" 0 "restore into a blank copy"
[ "$rc" = 0 ] || diag "$out"
like "$out" "sockets or device nodes of the snapshot were not made.*app\.sock" "... saying which socket it could not make"
compare "$T/copies/site" "blank copy" copy
"$TEND" instance add twin --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$T/copies/twin" >/dev/null 2>&1
out=$("$TEND" --quiet clone src twin 2>&1); rc=$?
is "$rc" 0 "clone of the torture tree"
[ "$rc" = 0 ] || diag "$out"
compare "$T/copies/twin" "clone" copy
"$TEND" --quiet export src latest "$T/torture.tar.zst" >/dev/null 2>&1 || diag "export failed"
"$TEND" instance add imported --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$T/copies/imported" >/dev/null 2>&1
out=$("$TEND" --quiet import imported "$T/torture.tar.zst" 2>&1); rc=$?
is "$rc" 0 "export + import of the torture tree"
[ "$rc" = 0 ] || diag "$out"
"$TEND" --quiet restore imported >/dev/null 2>&1
compare "$T/copies/imported" "export + import" copy
done_testing
