#!/bin/bash
# Remote hosts over SSH against the harness sshd: host keys (unknown, trusted, changed),
# key / agent / password auth, exit codes and stderr, quoting of awkward names, a
# WordPress instance checked over SSH, fan-out with -j.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
unset SSH_AUTH_SOCK
H=$SSHD_URL

"$TEND" instance add web --app generic --host "$H" --ssh-key "$SSHD_KEY" --path /tmp --tag role=web >/dev/null 2>&1

err=$("$TEND" exec web -- true 2>&1); rc=$?
fp=$(re_escape "$(ssh-keygen -lf "$SSHD_HOST_KEY_PUB" | cut -d' ' -f2)")
like "$rc:$err" "^1:tend: instance web: ssh 127.0.0.1:$SSHD_PORT: unknown host key ssh-ed25519 $fp; if that is the server's key, run: tend host trust web$" \
  "an unknown host key is refused with its SHA256 fingerprint and the command that trusts it"
out=$("$TEND" host trust web 2>&1); rc=$?
like "$rc:$out" "^0:.*ssh-ed25519 $fp: trusted, added to" "host trust adds the key"
is "$(cut -d' ' -f1,3 "$TEND_HOME/known_hosts")" "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f2 "$SSHD_HOST_KEY_PUB")" \
  "known_hosts gets the [host]:port line with the server's key"
like "$("$TEND" host trust web 2>&1)" "already trusted" "trusting again changes nothing"

# Key auth; exit codes, stderr and stdout come back as they were.
out=$("$TEND" exec web -- sh -c 'echo out; echo err >&2; exit 7' 2>"$(harness_tmp)/err"); rc=$?
is "$rc:$out:$(cat "$(harness_tmp)/err")" "7:out:err" "key auth; the remote exit code, stdout and stderr propagate"
is "$("$TEND" exec web -- pwd)" "/tmp" "exec runs in the instance's path"
out=$("$TEND" exec web -- no-such-command-x 2>&1); rc=$?
like "$rc:$out" "^127:.*no-such-command-x: not found" "a missing remote command: the shell's message and exit 127"

out=$("$TEND" host check web 2>&1); rc=$?
like "$rc:$out" "^0:.*host key: +ssh-ed25519 $fp \(trusted\).*logged in as: +$SSHD_USER" "host check reports key and user"
like "$("$TEND" host list)" "$H +web" "host list shows the host and its instances"

# Awkward names survive a round trip: created by exec, listed and read back.
names=("with space" "it's" 'dq"uote' "new
line" '$(touch pwned)' '`touch pwned`' "-leading-dash" "ütf-8 ✓" "back\\slash" "*")
dir=$(harness_tmp)/names
mkdir -p "$dir"
"$TEND" instance add names --app generic --host "$H" --ssh-key "$SSHD_KEY" --path "$dir" >/dev/null 2>&1
for n in "${names[@]}"; do "$TEND" exec names -- sh -c 'printf "%s" "$1" > "./$1"' sh "$n"; done
count=0
for n in "${names[@]}"; do [ -f "$dir/$n" ] && [ "$(cat "$dir/$n")" = "$n" ] && count=$((count + 1)); done
is "$count" "${#names[@]}" "exec passes every awkward name as one argument (files made with the exact names)"
ok "no command substitution ran on the far side" test ! -e "$dir/pwned"
cat > "$(harness_tmp)/readback.lua" <<'LUA'
return { name = "readback", summary = "read files back through the transport",
  params = { { name = "instance", type = "instance", positional = true, required = true } },
  run = function(ctx, args)
    local t = args.instance:transport()
    local good = 0
    for _, n in ipairs(assert(t:list(args.instance.path))) do
      local body = assert(t:read(args.instance.path .. "/" .. n))
      if body == n and t:stat(args.instance.path .. "/" .. n).type == "file" then good = good + 1 end
    end
    print(good)
  end }
LUA
is "$("$TEND" run "$(harness_tmp)/readback.lua" names 2>&1)" "${#names[@]}" "list, stat and read over SSH return every awkward name intact"

# The same names through SFTP writes: mkdir -p, write (atomic, with a mode), rename, remove.
cat > "$(harness_tmp)/sftp.lua" <<'LUA'
return { name = "sftp", summary = "write awkward names over SFTP",
  params = { { name = "instance", type = "instance", positional = true, required = true },
             { name = "name", list = true } },
  run = function(ctx, args)
    local t, base = args.instance:transport(), args.instance.path .. "/sftp/a b/c"
    assert(t:mkdir_p(base, tonumber("750", 8)))
    assert(t:mkdir_p(base))
    for _, n in ipairs(args.name) do
      assert(t:write(base .. "/" .. n, "body:" .. n, tonumber("640", 8)))
    end
    assert(t:write(base .. "/" .. args.name[2], "body:" .. args.name[2], tonumber("640", 8))) -- replaces
    assert(t:write(base .. "/over", "old")); assert(t:write(base .. "/target", "x"))
    assert(t:rename(base .. "/over", base .. "/target")) -- over an existing file
    assert(t:read(base .. "/target") == "old", "rename replaced the target")
    assert(t:remove(base .. "/target"))
    assert(t:rename(base .. "/" .. args.name[1], base .. "/renamed"))
    assert(t:remove(base .. "/renamed"))
    local _, msg, code = t:read(base .. "/renamed")
    print(code, #assert(t:list(base)))
  end }
LUA
args=()
for n in "${names[@]}"; do args+=(--name "$n"); done
out=$("$TEND" run "$(harness_tmp)/sftp.lua" names "${args[@]}" 2>&1)
is "$out" "$(printf 'enoent\t%d' $((${#names[@]} - 1)))" "SFTP mkdir -p, write, rename and remove with awkward names; a missing file is enoent"
good=0
for n in "${names[@]:1}"; do
  [ "$(cat "$dir/sftp/a b/c/$n")" = "body:$n" ] && [ "$(stat -c %a "$dir/sftp/a b/c/$n")" = 640 ] && good=$((good + 1))
done
is "$good" "$((${#names[@]} - 1))" "every file written over SFTP has its exact name, content and mode"
is "$(stat -c %a "$dir/sftp/a b/c")" 750 "mkdir -p made the directory with its mode"
is "$(ls -a "$dir/sftp/a b/c" | grep -c 'tend-')" 0 "no temp files are left behind"

# WordPress over SSH: app, version and a database reached through the remote client,
# its password fed as a 0600 temp file that is gone afterwards.
"$TEND" instance add rwp --app wordpress --host "$H" --ssh-key "$SSHD_KEY" --path "$WP_PATH" >/dev/null 2>&1
before=$(ls /tmp | wc -l)
out=$("$TEND" check rwp 2>&1); rc=$?
like "$rc:$out" "^0:.*app: +wordpress 6\.1\.[0-9]+.*database: .*tables: reachable" "check over SSH: wordpress 6.1.x, database reachable"
is "$(ls /tmp | wc -l)" "$before" "the remote option file is removed"

# Agent auth: no key file on the instance, the key in a test-started ssh-agent.
eval "$(ssh-agent -s)" >/dev/null
ssh-add -q "$SSHD_KEY" 2>/dev/null
"$TEND" instance add viaagent --app generic --host "$H" --path /tmp >/dev/null 2>&1
is "$("$TEND" exec viaagent -- echo agent-ok 2>&1)" "agent-ok" "ssh-agent auth"
ssh-agent -k >/dev/null 2>&1
unset SSH_AUTH_SOCK SSH_AGENT_PID
out=$("$TEND" exec viaagent -- true 2>&1); rc=$?
like "$rc:$out" "^1:tend: instance viaagent: ssh 127.0.0.1:$SSHD_PORT: no way to log in as $SSHD_USER was accepted" \
  "without agent or key: one clear line"

# Password auth, password from the vault.
if [ -n "${SSHD_PW_USER:-}" ]; then
  printf '%s' "$SSHD_PW_PASSWORD" | "$TEND" secret set pw-login >/dev/null 2>&1
  "$TEND" instance add viapw --app generic --host "ssh://$SSHD_PW_USER@127.0.0.1:$SSHD_PORT" \
    --ssh-password-secret pw-login --path /tmp >/dev/null 2>&1
  is "$("$TEND" exec viapw -- id -un 2>&1)" "$SSHD_PW_USER" "password auth with the password from the vault"
  printf 'wrong' | "$TEND" secret set pw-login >/dev/null 2>&1
  out=$("$TEND" exec viapw -- true 2>&1); rc=$?
  like "$rc:$out" "^1:tend: instance viapw: ssh 127.0.0.1:$SSHD_PORT: password authentication: .* \(user $SSHD_PW_USER\)$" \
    "a wrong password: one clear line, exit 1"
  is "$(printf '%s\n' "$out" | wc -l)" 1 "... only one line"
else
  _tap_result 0 "# SKIP password auth needs root for useradd"
  _tap_result 0 "# SKIP"
  _tap_result 0 "# SKIP"
fi

# Unreachable: a refused port, and a port that accepts TCP but never speaks SSH.
"$TEND" instance add refused --app generic --host "ssh://root@127.0.0.1:1" --path /tmp >/dev/null 2>&1
out=$("$TEND" exec refused -- true 2>&1); rc=$?
like "$rc:$out" "^1:tend: instance refused: ssh 127.0.0.1:1: Connection refused$" "a refused port: one line, exit 1"
silent_port=$(free_port)
/usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5); time.sleep(60)' "$silent_port" &
silent=$!
wait_for "silent listener" 5 _port_open "$silent_port"
"$TEND" instance add silent --app generic --host "ssh://root@127.0.0.1:$silent_port" --path /tmp >/dev/null 2>&1
out=$(TEND_SSH_TIMEOUT=2 "$TEND" exec silent -- true 2>&1); rc=$?
like "$rc:$out" "^1:tend: instance silent: ssh 127.0.0.1:$silent_port: handshake timed out after 2s$" \
  "a server that never answers times out (TEND_SSH_TIMEOUT=2)"
kill "$silent" 2>/dev/null

# A changed host key: an sshd trusted on one port, restarted there with another key.
d2=$(harness_tmp)/sshd2
mkdir -p "$d2/pub" && chmod 700 "$d2"
ssh-keygen -q -t ed25519 -N '' -f "$d2/host_key"
cp "$SSHD_KEY.pub" "$d2/pub/authorized_keys"
p2=$(free_port)
pid2=$(sshd_run "$d2" "$p2")
wait_for sshd2 10 _port_open "$p2"
"$TEND" instance add moved --app generic --host "ssh://$SSHD_USER@127.0.0.1:$p2" --ssh-key "$SSHD_KEY" --path /tmp >/dev/null 2>&1
"$TEND" host trust moved >/dev/null 2>&1
is "$("$TEND" exec moved -- echo before 2>&1)" "before" "a second sshd, trusted"
kill "$pid2"; wait "$pid2" 2>/dev/null
rm -f "$d2/host_key" "$d2/host_key.pub"
ssh-keygen -q -t ed25519 -N '' -f "$d2/host_key"
pid2=$(sshd_run "$d2" "$p2")
HARNESS_PIDS="$HARNESS_PIDS $pid2"
wait_for sshd2-again 10 _port_open "$p2"
newfp=$(re_escape "$(ssh-keygen -lf "$d2/host_key.pub" | cut -d' ' -f2)")
out=$("$TEND" exec moved -- echo after 2>&1); rc=$?
like "$rc:$out" "^1:tend: instance moved: ssh 127.0.0.1:$p2: HOST KEY CHANGED: the server now shows ssh-ed25519 key $newfp" \
  "after a restart with another host key the host is refused, saying so plainly"
out=$("$TEND" host trust moved 2>&1); rc=$?
like "$rc:$out" "^1:.*HOST KEY CHANGED" "host trust refuses a changed key too"

# IPv6: an sshd on [::1], reached by ssh://USER@[::1]:PORT.
d6=$(harness_tmp)/sshd6
mkdir -p "$d6/pub" && chmod 700 "$d6"
ssh-keygen -q -t ed25519 -N '' -f "$d6/host_key"
cp "$SSHD_KEY.pub" "$d6/pub/authorized_keys"
p6=$(free_port)
pid6=$(sshd_run "$d6" "$p6")
HARNESS_PIDS="$HARNESS_PIDS $pid6"
sed -i 's/^ListenAddress 127.0.0.1$/ListenAddress ::1/' "$d6/sshd_config"
kill "$pid6"; wait "$pid6" 2>/dev/null
/usr/sbin/sshd -D -f "$d6/sshd_config" -E "$d6/sshd.log" </dev/null >/dev/null 2>&1 &
HARNESS_PIDS="$HARNESS_PIDS $!"
wait_for sshd6 10 sh -c "exec 3<>/dev/tcp/::1/$p6" 2>/dev/null
"$TEND" instance add six --app generic --host "ssh://$SSHD_USER@[::1]:$p6" --ssh-key "$SSHD_KEY" --path /tmp >/dev/null 2>&1
"$TEND" host trust six >/dev/null 2>&1
like "$(cat "$TEND_HOME/known_hosts")" "\[::1\]:$p6 ssh-ed25519" "an IPv6 host is trusted as [::1]:PORT"
is "$("$TEND" exec six -- echo over-ipv6 2>&1)" "over-ipv6" "exec over IPv6"

# Live output: the first line arrives while the command is still running.
"$TEND" exec web -- sh -c 'echo first; sleep 3; echo second' > "$(harness_tmp)/live.out" 2>&1 &
live=$!
wait_for "the first line" 2 grep -q first "$(harness_tmp)/live.out"
got_first=$?
ok "exec output is shown live, before the command ends" test "$got_first" -eq 0 -a "$(grep -c second "$(harness_tmp)/live.out")" -eq 0
wait "$live"
is "$(cat "$(harness_tmp)/live.out")" "$(printf 'first\nsecond')" "... and all of it arrives"

# Fan-out: several instances in parallel, each reported, a summary at the end.
for i in 1 2 3; do "$TEND" instance add fan$i --app generic --host "$H" --ssh-key "$SSHD_KEY" --path /tmp --tag role=fan >/dev/null 2>&1; done
"$TEND" instance add fanbad --app generic --host "ssh://root@127.0.0.1:1" --path /tmp --tag role=fan >/dev/null 2>&1
out=$("$TEND" exec --tag role=fan -j 4 -- sh -c 'echo hello' 2>&1); rc=$?
is "$rc" 1 "exec --tag -j 4 exits 1 when one instance failed"
for i in 1 2 3; do like "$out" "fan$i: hello" "fan$i reports its output, prefixed"; done
like "$out" "fanbad: instance fanbad: ssh 127.0.0.1:1: Connection refused" "the failure is reported, prefixed"
like "$out" "3 ok, 1 failed: fanbad" "the summary names the failure"
json=$("$TEND" --json exec --tag role=fan -j 4 -- true 2>/dev/null)
is "$(printf '%s' "$json" | lua5.4 -e 'local r = require("cjson").decode(io.read("a"))
  local out = {} for _, x in ipairs(r) do out[#out + 1] = x.instance .. "=" .. tostring(x.ok) end print(table.concat(out, " "))')" \
  "fan1=true fan2=true fan3=true fanbad=false" "--json gives a result per instance"

done_testing
