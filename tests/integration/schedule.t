#!/bin/bash
# Scheduling: the crontab's managed block beside the user's own lines; one run at a
# time per job, a lock left by a killed run taken over; a failing job mails an alert
# naming job, instance and cause (SSH host down; TEND_HOME on a full disk), a
# succeeding one does not; and Debian's real cron runs a job.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress smtp
fresh_home
T=$(harness_tmp)
q() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
mails() { grep -l -- "$1" "$SMTP_MAILDIR"/new/* 2>/dev/null | wc -l; }

# The crontab is the real one of the user running the tests: keep it, put it back.
saved=$T/crontab.saved
if crontab -l > "$saved" 2>/dev/null; then had_crontab=1; else had_crontab=0; fi
restore_crontab() { if [ "$had_crontab" = 1 ]; then crontab "$saved"; else crontab -r 2>/dev/null; fi; }
trap 'restore_crontab; _harness_cleanup' EXIT
printf '17 3 * * * echo unrelated # a line of the user'"'"'s own\n' | crontab -

"$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from tend@example.org >/dev/null
"$TEND" instance add wp --app wordpress --path "$WP_PATH" >/dev/null 2>&1

# Adding jobs: the expression is checked, the bad field named.
like "$("$TEND" schedule add bad --cron "61 * * * *" -- backup wp 2>&1; echo "rc=$?")" \
  'cron "61 \* \* \* \*": minute: 61 is out of range 0-59.*rc=2' "a bad cron expression is refused, naming the field"
like "$("$TEND" schedule add bad --cron "@daily" -- nosuchthing 2>&1; echo "rc=$?")" "neither a recipe nor a tend command.*rc=2" \
  "so is a command that does not exist"
ok "schedule add takes a job" "$TEND" schedule add nightly --cron "@daily" --mail-to ops@example.org -- backup wp
ok "... and @daily-style shortcuts" "$TEND" schedule add hourly-verify --cron "@hourly" -- store verify
like "$("$TEND" schedule list)" "nightly +@daily +never +- +[0-9-]+ 00:00 +backup wp" "schedule list shows cron, last run, status, next run"

# sync: our block beside the user's line, idempotent; rm + sync takes only ours out.
is "$("$TEND" schedule sync)" "crontab updated" "schedule sync writes the crontab"
ct=$(crontab -l)
like "$ct" "echo unrelated # a line of the user's own" "the user's own line is still there"
like "$ct" "@daily .*schedule run nightly" "the job is in the crontab"
is "$(printf '%s\n' "$ct" | grep -c 'schedule run')" 2 "one line per job"
is "$("$TEND" schedule sync)" "crontab already up to date" "a second sync changes nothing"
"$TEND" schedule rm hourly-verify >/dev/null 2>&1
"$TEND" schedule sync >/dev/null
ct=$(crontab -l)
is "$(printf '%s\n' "$ct" | grep -c 'schedule run')" 1 "rm + sync removes that job's line"
like "$ct" "echo unrelated" "... and only that"

# One run at a time; a lock left by a killed run is taken over.
"$TEND" schedule add slow --cron "* * * * *" -- exec wp -- sleep 3 >/dev/null 2>&1
"$TEND" schedule run slow > "$T/slow.out" 2>&1 &
first=$!
wait_for "the first run to hold its lock" 20 test -e "$TEND_HOME/locks/job-slow.lock.who"
out=$("$TEND" schedule run slow 2>&1); rc=$?
like "$rc:$out" "^4:tend: job slow is already running \(pid $first on " "a second run at once exits 4 and names the holder"
wait "$first"; rc=$?
is "$rc" 0 "the first run finishes, exit 0"
"$TEND" schedule run slow > "$T/killed.out" 2>&1 &
victim=$!
running_recorded() { [ "$(q "SELECT count(*) FROM runs WHERE job = 'slow' AND status = 'running'")" = 1 ]; }
wait_for "the run to start and be recorded" 20 running_recorded
kill -KILL "$victim"; wait "$victim" 2>/dev/null
out=$("$TEND" schedule run slow 2>&1); rc=$?
like "$rc:$out" "^0:tend: warning: job slow: taking over the lock of pid $victim .*ended without letting go" \
  "the next run takes over the lock the killed run left, with a warning"
like "$(q "SELECT status || ' ' || error FROM runs WHERE job = 'slow' ORDER BY id DESC LIMIT 1 OFFSET 1")" "^failed killed: pid $victim" \
  "the killed run is recorded as killed"
like "$("$TEND" log slow)" "ok" "tend log shows the job's runs"

# A job that fails mails an alert; one that succeeds does not.
port=$(free_port)
"$TEND" instance add down --app generic --host "ssh://tend@127.0.0.1:$port" --path /srv/site >/dev/null 2>&1
"$TEND" schedule add down-backup --cron "@daily" --mail-to ops@example.org -- backup down >/dev/null 2>&1
out=$("$TEND" schedule run down-backup 2>&1); rc=$?
like "$rc:$out" "^1:tend: job down-backup failed: down: .*127.0.0.1:$port" "a job whose host is down fails, naming the host"
wait_for "the alert" 10 has_mail 'Subject: tend: job down-backup FAILED (down)'
alert=$(grep -l 'Subject: tend: job down-backup FAILED (down)' "$SMTP_MAILDIR"/new/* | head -1)
like "$(cat "$alert")" "Job: +down-backup" "the alert names the job"
like "$(cat "$alert")" "Instance: +down" "... the instance"
like "$(cat "$alert")" "Cause: +down: .*127.0.0.1:$port" "... and the cause"
like "$("$TEND" log --failed)" "down-backup +down .*failed" "tend log --failed lists it"
run=$(q "SELECT max(id) FROM runs WHERE job = 'down-backup'")
like "$("$TEND" log show "$run")" "alert: mailed to ops@example.org" "tend log show says the alert went out"
out=$("$TEND" status down 2>"$T/status.err"); rc=$?
like "$rc:$out" "^1:INSTANCE +BACKUP +JOB .*down +- +down-backup +[0-9-]+ [0-9:]+ +failed +down: " \
  "tend status exits 1 after a failed scheduled run, naming the job and the cause"
is "$(cat "$T/status.err")" "tend: 1 job failed on its last run (tend log --failed)" "... and says so in one line"
json=$("$TEND" --json status down 2>/dev/null)
is "$(printf '%s' "$json" | python3 -c 'import json,sys; j=json.load(sys.stdin)[0]["jobs"][0]; print(j["job"], j["status"], j["error"][:5])')" \
  "down-backup failed down:" "... and --json gives each job's last run"

# A webhook gets the failure as JSON; one that answers an error is reported, not fatal.
hook_port=$(free_port)
mkdir -p "$T/hooks"
/usr/bin/python3 tests/harness/http-sink.py "$hook_port" "$T/hooks" & hook_pid=$!
wait_for "the webhook sink" 10 _port_open "$hook_port"
"$TEND" schedule add down-hook --cron "@daily" --webhook "http://127.0.0.1:$hook_port/hook" -- backup down >/dev/null 2>&1
"$TEND" schedule run down-hook >/dev/null 2>&1
like "$(head -1 "$T/hooks/1.head" 2>&1)" "^POST /hook$" "a failed job POSTs to its webhook"
body=$(cat "$T/hooks/1.body" 2>&1)
like "$body" '"job":"down-hook"' "... JSON naming the job"
like "$body" '"status":"failed"' "... its status"
like "$body" "\"error\":\"down: [^\"]*127.0.0.1:$port" "... and the cause"
"$TEND" schedule add bad-hook --cron "@daily" --webhook "http://127.0.0.1:$hook_port/status/500" -- backup down >/dev/null 2>&1
out=$("$TEND" schedule run bad-hook 2>&1); rc=$?
like "$rc:$out" "^1:.*warning: bad-hook: the webhook failed: webhook http://127.0.0.1:$hook_port/status/500 answered 500" \
  "a webhook that answers 500 is reported as a warning; the job's own exit code stays"
kill "$hook_pid"

before=$(ls "$SMTP_MAILDIR"/new | wc -l)
out=$("$TEND" schedule run nightly 2>&1); rc=$?
is "$rc" 0 "a job that succeeds exits 0"
out=$("$TEND" status wp 2>&1); rc=$?
like "$rc:$out" "^0:.*wp +[0-9-]+ [0-9:]+ +nightly +[0-9-]+ [0-9:]+ +ok" "tend status of an instance whose jobs went well exits 0"
sleep 1
is "$(ls "$SMTP_MAILDIR"/new | wc -l)" "$before" "... and mails nothing"

# TEND_HOME on a full disk: the preflight says so, and the alert goes out.
if [ "$(id -u)" = 0 ]; then
  small=$T/small
  mkdir -p "$small" && mount -t tmpfs -o size=8m tmpfs "$small"
  TEND_HOME=$small "$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from tend@example.org >/dev/null
  TEND_HOME=$small "$TEND" instance add wp --app wordpress --path "$WP_PATH" >/dev/null 2>&1
  TEND_HOME=$small "$TEND" schedule add nightly --cron "@daily" --mail-to ops@example.org -- backup wp >/dev/null 2>&1
  out=$(TEND_HOME=$small "$TEND" schedule run nightly 2>&1); rc=$?
  like "$rc:$out" "^1:tend: job nightly failed: disk full: [0-9]+ MB free for $small" "with TEND_HOME on a full disk, the job fails: disk full"
  wait_for "the alert" 10 has_mail 'Subject: tend: job nightly FAILED (wp)'
  like "$(cat "$(grep -l 'Subject: tend: job nightly FAILED (wp)' "$SMTP_MAILDIR"/new/* | head -1)")" "Cause: +disk full" \
    "... and the alert says disk full"
  umount "$small"
else
  for _ in 1 2; do _tap_result 0 "# SKIP the tmpfs needs root"; done
fi

# Real cron: Debian's cron daemon runs a `* * * * *` job: cron waits for a whole minute
# after it starts, so this allows it nearly three.
if [ "$(id -u)" = 0 ]; then
  "$TEND" schedule add every-minute --cron "* * * * *" -- store verify >/dev/null 2>&1
  "$TEND" schedule sync >/dev/null
  started_cron=
  if ! pgrep -x cron >/dev/null; then /usr/sbin/cron -f -L 0 & started_cron=$!; fi
  cron_ran() { [ "$(q "SELECT count(*) FROM runs WHERE job = 'every-minute' AND status = 'ok'")" -ge 1 ]; }
  wait_for "cron to run the job" 170 cron_ran
  ran=$(q "SELECT count(*) >= 1 FROM runs WHERE job = 'every-minute' AND status = 'ok'")
  is "$ran" 1 "cron ran the job, and the run is recorded"
  [ "$ran" = 1 ] || diag "$(q "SELECT id, job, status, error FROM runs ORDER BY id DESC LIMIT 5")"
  [ -n "$started_cron" ] && kill "$started_cron" 2>/dev/null
else
  _tap_result 0 "# SKIP starting cron needs root"
fi

# systemd timers instead of cron: a service and a timer per job, checked by
# systemd-analyze; the crontab's block goes (one of the two starts each job), and a job
# gone takes its units with it.
export XDG_CONFIG_HOME=$T/xdg XDG_RUNTIME_DIR=$T/xdg-run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
units=$XDG_CONFIG_HOME/systemd/user
"$TEND" schedule add weekdays --cron "*/15 2 * * 1-5" -- store verify >/dev/null 2>&1
out=$("$TEND" schedule sync --systemd 2>/dev/null); rc=$?
like "$rc:$out" "^0:systemd user units in $units: [0-9]+ written, 0 removed, [0-9]+ timers" "schedule sync --systemd writes the units"
ok "... a service and a timer for the job" test -f "$units/tend-weekdays.service" -a -f "$units/tend-weekdays.timer"
like "$(cat "$units/tend-weekdays.timer")" "OnCalendar=Mon,Tue,Wed,Thu,Fri \*-\*-\* 02:00,15,30,45:00" "... its cron expression as OnCalendar="
verify=$(systemd-analyze verify --user "$units"/tend-*.timer "$units"/tend-*.service 2>&1); rc=$?
is "$rc" 0 "systemd-analyze verify accepts every unit"
[ "$rc" = 0 ] || diag "$verify"
next=$(systemd-analyze calendar "$(sed -n 's/^OnCalendar=//p' "$units/tend-weekdays.timer")" | sed -n 's/^ *Next elapse: //p')
like "$next" "^(Mon|Tue|Wed|Thu|Fri) .* 02:(00|15|30|45):00" "... and the timer's next run is a weekday at 2:00-2:45"
unlike "$(crontab -l 2>/dev/null)" "schedule run" "tend's block left the crontab: systemd starts the jobs now"
like "$(crontab -l 2>/dev/null)" "echo unrelated" "... the user's own line stays"
exec_line=$(sed -n 's/^ExecStart=//p' "$units/tend-weekdays.service")
eval "set -- $exec_line"
"$@" >/dev/null 2>&1; rc=$?
is "$rc:$(q "SELECT status FROM runs WHERE job = 'weekdays' ORDER BY id DESC LIMIT 1")" "0:ok" \
  "the service's ExecStart runs the job as cron would, recorded"
"$TEND" schedule rm weekdays >/dev/null 2>&1
"$TEND" schedule sync --systemd >/dev/null 2>&1
ok "a removed job's units go with the next sync" test ! -e "$units/tend-weekdays.timer" -a ! -e "$units/tend-weekdays.service"
printf '[Unit]\nDescription=not ours\n' > "$units/tend-mine.service"
"$TEND" schedule sync >/dev/null 2>&1
ok "back to cron: tend's units are gone" sh -c "! ls '$units'/tend-*.timer 2>/dev/null | grep -q ."
ok "... a unit that is not tend's is left alone" test -f "$units/tend-mine.service"
like "$(crontab -l)" "schedule run" "... and the crontab has the jobs again"
out=$("$TEND" schedule add both --cron "0 3 1 * 1" -- store verify 2>&1 && "$TEND" schedule sync --systemd 2>&1); rc=$?
like "$rc:$out" "^2:.*both the day of month and the day of week.*systemd timers cannot say that" \
  "a cron expression OnCalendar= cannot say is refused, before any unit is written"
"$TEND" schedule rm both >/dev/null 2>&1
done_testing
