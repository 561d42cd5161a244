#!/bin/bash
# The REPL as a person uses it, in a real terminal (tmux: send-keys to type,
# capture-pane to read the screen): an expression's value printed, an instance name and
# a method completed with Tab, a backup from the prompt, an error that does not end the
# session, multi-line input, and history kept across sessions. Then `repl -e`.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
add_wordpress_over_ssh prodsite

sock=$T/tmux.sock
tm() { tmux -S "$sock" "$@"; }
trap 'tm kill-server 2>/dev/null; _harness_cleanup' EXIT
screen() { tm capture-pane -p -J -t repl -S -200; }
# expect REGEX DESC: wait up to 20 s for the screen to match, then say ok or not.
expect() {
  local tries=200
  while [ $tries -gt 0 ]; do
    screen 2>/dev/null | grep -Eq -- "$1" && { _tap_result 0 "$2"; return 0; }
    sleep 0.1; tries=$((tries - 1))
  done
  _tap_result 1 "$2"; diag "screen:"; screen 2>&1 | grep -v '^$' | tail -15 | sed 's/^/#   /'
  return 1
}
# type TEXT: one line typed and entered (libedit drops keys typed before its prompt).
type_line() { tm send-keys -t repl -l "$1"; tm send-keys -t repl Enter; }
start_repl() {
  tm new-session -d -s repl -x 160 -y 50 \
    "env TEND_HOME='$TEND_HOME' HOME='$HOME' '$TEND' repl; sleep 0.5" || bail "tmux would not start"
}
prompts() { screen | grep -c '^tend> '; }
# next_prompt N: wait for the Nth "tend> " prompt (the previous line has been handled).
prompts_at_least() { [ "$(prompts)" -ge "$1" ]; }
next_prompt() { wait_for "prompt $1" 60 prompts_at_least "$1"; }

start_repl
expect '^tend> ' "the REPL starts in a terminal with a prompt"
expect '^tend [0-9]+\.[0-9]+ REPL: ' "... its greeting gives tend's release, as the guide shows it"
type_line '6 * 7'
expect '^42$' "an expression's value is printed"

next_prompt 2
tm send-keys -t repl -l 'prods'
tm send-keys -t repl Tab
expect '^tend> prodsite' "Tab completes an instance name"
tm send-keys -t repl -l ':ba'
tm send-keys -t repl Tab
expect '^tend> prodsite:backup' "... and a method of the instance"
tm send-keys -t repl -l '()'
tm send-keys -t repl Enter
expect '^snapshot 1 of prodsite: [0-9-]+ [0-9:]+, [0-9]+ files, [0-9]+ bytes of database$' \
  "prodsite:backup() takes a snapshot over SSH and shows it readably"
is "$(sqlite3 "$TEND_HOME/catalog.db" 'SELECT count(*) FROM snapshots')" 1 "... recorded in the catalog"

next_prompt 3
type_line 'prodsite:exec("uname -s").stdout'
expect '^"Linux\\n"$' "an instance runs a command on its host"

next_prompt 4
type_line 'nosuch.field'
expect "^error: repl:1: attempt to index a nil value \\(global 'nosuch'\\)$" "an error is shown"
next_prompt 5
type_line '{ name = prodsite.name, list = { 1, 2 } }'
expect '^  name = "prodsite",$' "... and the session goes on; tables print as trees"

next_prompt 6
type_line 'function sq(x)'
wait_for "the continuation prompt" 20 sh -c "tmux -S '$sock' capture-pane -p -t repl | grep -q '^>>'"
type_line '  return x * x end'
next_prompt 7
type_line 'sq(9)'
expect '^81$' "multi-line input is gathered until complete, then runs"

next_prompt 8
type_line 'while true do end'
sleep 0.5
tm send-keys -t repl C-c
expect '^(\^C)?interrupted$' "Ctrl-C stops a line that runs forever, saying only that"
next_prompt 9
tm send-keys -t repl -l 'half a line'
tm send-keys -t repl C-c
next_prompt 10
type_line '40 + 2'
forty_two_twice() { [ "$(screen | grep -c '^42$')" -ge 2 ]; }
wait_for "the second 42" 20 forty_two_twice
is "$(screen | grep -c '^42$')" 2 "... and at the prompt it drops the line, not the session"

next_prompt 11
type_line '"hist-" .. 20 + 3'
expect '^"hist-23"$' "a last line for the history"
next_prompt 12
tm send-keys -t repl C-d
wait_for "the REPL to end" 20 sh -c "! tmux -S '$sock' has-session -t repl"
like "$(cat "$TEND_HOME/repl_history")" 'hist-' "history is written to \$TEND_HOME/repl_history"

start_repl
expect '^tend> ' "a second session starts"
tm send-keys -t repl Up
expect '^tend> "hist-" \.\. 20 \+ 3' "Up brings back the last line of the previous session"
tm send-keys -t repl Enter
expect '^"hist-23"$' "... and it runs again"
tm send-keys -t repl C-d

# One-shots for scripts.
is "$("$TEND" repl -e 'prodsite.path')" "\"$WP_PATH\"" "repl -e prints an expression's value"
is "$("$TEND" repl -e '#prodsite:snapshots(), prodsite:snapshots()[1].files > 0')" "1	true" \
  "... several values tab-separated; snapshots() lists the REPL's backup"
out=$("$TEND" repl -e 'error("boom")' 2>&1); rc=$?
is "$rc:$out" "1:tend: repl:1: boom" "repl -e with an error: one line, exit 1"
out=$("$TEND" repl -e 'if true then' 2>&1); rc=$?
is "$rc:$out" "2:tend: the expression is not complete" "repl -e with incomplete input: exit 2"
is "$(printf '1 + 1\nprodsite.app\n' | "$TEND" repl 2>/dev/null | tail -n 2)" '2
"wordpress"' "lines piped into the REPL are evaluated in turn"

done_testing
