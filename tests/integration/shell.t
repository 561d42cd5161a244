#!/bin/bash
# tend shell over SSH: the instance's web root, the exit code, commands fed from a pipe;
# at a terminal (util-linux script gives tend one) a terminal on the host with our TERM
# and window size; a host whose key is not trusted is refused before anything runs.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
fresh_home
T=$(harness_tmp)
ROOT="$T/site root"
mkdir -p "$ROOT" && echo '<?php echo "hi";' > "$ROOT/index.php"
"$TEND" instance add site --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$ROOT" >/dev/null 2>&1

out=$(printf 'pwd\n' | "$TEND" shell site 2>&1); rc=$?
like "$rc:$out" "host key|not trusted|tend host trust" "a host whose key is not trusted is refused"
unlike "$out" "$ROOT" "... and nothing ran there"
"$TEND" host trust site >/dev/null 2>&1

out=$(printf 'pwd\nls\nexit 3\n' | "$TEND" shell site 2>"$T/err"); rc=$?
is "$rc:$out" "3:$ROOT
index.php" "commands from a pipe run in the web root; the exit code is the shell's"
is "$(cat "$T/err")" "" "... and tend adds nothing to the output"

# At a terminal: script(1) runs tend on a pseudo-terminal of its own, 45 rows by 123 columns.
out=$(printf 'tty; echo "term=$TERM"; stty size; pwd; exit 4\n' |
  TERM=xterm-256color script -qec "stty rows 45 cols 123; '$TEND' shell site" /dev/null 2>&1); rc=$?
is "$rc" 4 "at a terminal the exit code is the shell's too"
like "$out" "/dev/pts/[0-9]+" "... the shell has a terminal on the host"
like "$out" "term=xterm-256color" "... with our TERM"
like "$out" "45 123" "... and our window size"
like "$out" "$ROOT" "... in the web root"
out=$(printf 'exit 0\n' | script -qec "stty sane; '$TEND' shell site; stty -a" /dev/null 2>&1)
like "$out" " icanon .* echo " "afterwards our terminal is as it was (not left raw)"

done_testing
