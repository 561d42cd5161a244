#!/bin/bash
# make demo, as the README's quick start runs it: every step of the job on the sample
# site, twice in a row (it reuses what is there and puts the site back each time).
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
fresh_home
export TEND_DEMO_DIR=$(harness_tmp)/demo
for run in first second; do
  out=$(tools/demo 2>&1); rc=$?
  is "$rc" 0 "the demo's $run run exits 0"
  like "$out" "tend check demo.*database: sqlite:.*reachable" "... check reaches the site and its database"
  like "$out" "tend backup demo.*demo: snapshot [0-9]+: 4 files" "... a backup takes a snapshot"
  like "$out" "notes now: DEFACED.*tend watch demo.*changed  index.php \\(content\\)" "... watch catches the tampered file"
  unlike "$out" "changed  data/notes.db" "... and leaves the site's own database file to backups"
  like "$out" "tend restore demo.*notes now: Welcome to tend \\| Backups \\| Mirrors" "... restore puts the note back"
  like "$out" "watch again: nothing differs.*no file differs from the baseline" "... and the file"
  like "$out" "Back up again.*0 new in the store" "... a backup after it stores nothing new"
  like "$out" "tend clone demo demo-copy.*no file changed since snapshot.*demo-copy: now a copy of demo" \
    "... clone copies demo onto demo-copy (demo's backup for it reads no file)"
  like "$out" "demo-copy's notes: Welcome to tend \\| Backups \\| Mirrors" "... with its data"
  like "$out" "files: the same" "... and compare finds the two the same"
done
is "$(grep -c . "$TEND_DEMO_DIR/site/index.php")" 7 "the site's index.php is as it was made"
done_testing
