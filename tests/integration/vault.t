#!/bin/bash
# The vault: set / list / use from a recipe / rm; wrong keys; the plaintext never lands
# in the catalog, the state dir, argv or the environment of any process.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need mariadb wordpress
fresh_home
plain="s3cr3t-$RANDOM-$RANDOM-plaintext"

printf '%s' "$plain" | "$TEND" secret set api.token >/dev/null 2>&1
is "$?" 0 "secret set reads the value from stdin"
out=$("$TEND" secret list 2>&1)
like "$out" "api\.token" "secret list shows the name"
unlike "$out" "$plain" "secret list never shows the value"
is "$(stat -c %a "$TEND_HOME/vault.key")" 600 "the vault key file is created 0600"

# secret get: the bare value on stdout; a terminal only with --show; names checked.
is "$("$TEND" secret get api.token)" "$plain" "secret get prints the value to a pipe"
is "$("$TEND" secret get api.token | od -An -c | tr -d ' \n' | tail -c 2)" "xt" "... as it is, no newline after it"
out=$(script -qec "'$TEND' secret get api.token" /dev/null 2>&1); rc=$?
like "$rc:$out" "^2:tend: stdout is a terminal: pipe it" "secret get refuses a terminal (exit 2)"
unlike "$out" "$plain" "... without showing the value"
like "$(script -qec "'$TEND' secret get api.token --show" /dev/null 2>&1)" "$plain" "... and shows it there with --show"
out=$("$TEND" secret get no.such 2>&1); rc=$?
like "$rc:$out" "^2:tend: no secret named no.such" "secret get of an unknown name exits 2"

out=$("$TEND" secret set 2>&1); rc=$?
is "$rc" 2 "secret set without a KEY exits 2"
out=$("$TEND" secret set token "$plain" 2>&1); rc=$?
is "$rc" 2 "a value on the command line is refused (exit 2)"
out=$(printf x | "$TEND" secret set 'bad name' 2>&1); rc=$?
is "$rc" 2 "a bad secret name exits 2"

# A recipe uses the secret; it sees its length and hash, not a printed value.
mkdir -p "$(harness_tmp)/recipes"
cat > "$(harness_tmp)/recipes/use-secret.lua" <<'LUA'
return { name = "use-secret", summary = "prove a recipe can use a secret",
  params = { { name = "key", positional = true, required = true } },
  run = function(ctx, args)
    local s = assert(ctx:vault():get(args.key))
    print(tostring(s), s:len(), s:reveal() == os.getenv("EXPECTED"))
  end }
LUA
export TEND_RECIPE_PATH="$(harness_tmp)/recipes"
out=$(cd "$(harness_tmp)" && EXPECTED=$plain "$TEND" use-secret api.token 2>&1)
is "$out" "$(printf 'secret(********)\t%d\ttrue' ${#plain})" "a recipe gets the secret; tostring hides it"

hits=$(grep -rl --binary-files=text -- "$plain" "$TEND_HOME" | wc -l)
is "$hits" 0 "the plaintext is nowhere in the state dir (catalog, WAL, key file)"
hits=$(sqlite3 "$TEND_HOME/catalog.db" .dump | grep -c -- "$plain")
is "$hits" 0 "the plaintext is not in a dump of the catalog"

# Wrong keys.
head -c 32 /dev/urandom | base64 > "$(harness_tmp)/other.key"
chmod 600 "$(harness_tmp)/other.key"
out=$(cd "$(harness_tmp)" && TEND_VAULT_KEY_FILE=$(harness_tmp)/other.key "$TEND" use-secret api.token 2>&1); rc=$?
is "$rc" 1 "a wrong key file fails with exit 1"
like "$out" "^tend: use-secret: wrong vault key \(from key file .*other.key\): it does not open this vault$" "... in one clear line"
chmod 644 "$(harness_tmp)/other.key"
out=$(TEND_VAULT_KEY_FILE=$(harness_tmp)/other.key "$TEND" secret set x <<<"y" 2>&1); rc=$?
like "$rc:$out" "^1:.*readable by others \(mode 644\); run: chmod 600" "a key file readable by others is refused"

# A tampered value.
sqlite3 "$TEND_HOME/catalog.db" "UPDATE secrets SET value = (CASE WHEN substr(value, 1, 1) = 'A' THEN 'B' ELSE 'A' END) || substr(value, 2) WHERE name = 'api.token'"
out=$(cd "$(harness_tmp)" && "$TEND" use-secret api.token 2>&1); rc=$?
like "$rc:$out" "^1:.*cannot decrypt api\.token: wrong vault key or tampered value" "a tampered value fails cleanly"

# A value moved to another name does not open (the name is authenticated).
printf '%s' "$plain" | "$TEND" secret set api.token >/dev/null 2>&1
sqlite3 "$TEND_HOME/catalog.db" "INSERT INTO secrets SELECT 'stolen', value, created_at, updated_at FROM secrets WHERE name = 'api.token'"
out=$(cd "$(harness_tmp)" && "$TEND" use-secret stolen 2>&1); rc=$?
like "$rc:$out" "^1:.*cannot decrypt stolen" "a sealed value copied under another name does not open"

out=$("$TEND" secret rm stolen 2>&1); rc=$?
is "$rc" 0 "secret rm exits 0"
unlike "$("$TEND" secret list)" "stolen" "the removed secret is gone from the list"
out=$("$TEND" secret rm stolen 2>&1); rc=$?
is "$rc" 2 "removing a missing secret exits 2"

# Passphrase mode: Argon2id; a wrong passphrase fails cleanly.
export TEND_HOME=$(harness_tmp)/pass-home
printf '%s' "$plain" | TEND_VAULT_PASSPHRASE="correct horse" "$TEND" secret set pw >/dev/null 2>&1
is "$?" 0 "a passphrase-protected vault stores a secret"
ok "no key file is written in passphrase mode" test ! -e "$TEND_HOME/vault.key"
out=$(cd "$(harness_tmp)" && TEND_VAULT_PASSPHRASE="correct horse" EXPECTED=$plain "$TEND" use-secret pw 2>&1)
like "$out" "true$" "the right passphrase opens it"
out=$(cd "$(harness_tmp)" && TEND_VAULT_PASSPHRASE="wrong horse" "$TEND" use-secret pw 2>&1); rc=$?
like "$rc:$out" "^1:.*wrong vault key \(from passphrase\)" "a wrong passphrase fails in one line"
out=$(cd "$(harness_tmp)" && "$TEND" use-secret pw 2>&1 </dev/null); rc=$?
like "$rc:$out" "^1:.*protected by a passphrase: set TEND_VAULT_PASSPHRASE" "no passphrase and no terminal: told what to do"
hits=$(grep -rl --binary-files=text -e "$plain" -e "correct horse" "$TEND_HOME" | wc -l)
is "$hits" 0 "neither the value nor the passphrase is in the state dir"

# ps never shows a database password: sample every process's argv and environment
# while checks and backups that hand the password to the mariadb clients run (a backup's
# look before the dump, and the dump).
export TEND_HOME=$(harness_tmp)/ps-home
printf '%s' "$MARIADB_PASSWORD" | "$TEND" secret set db >/dev/null 2>&1
"$TEND" instance add w --app generic --path "$WP_PATH" \
  --db "mysql://$MARIADB_USER@127.0.0.1:$MARIADB_PORT/$MARIADB_DB" --db-password-secret db >/dev/null 2>&1
fifo=$(harness_tmp)/sampler.fifo
mkfifo "$fifo"
/usr/bin/python3 tests/harness/argv-sampler.py "$MARIADB_PASSWORD" "defaults-extra-file=/dev/fd/3" \
  < "$fifo" > "$(harness_tmp)/sampler.out" 2>"$(harness_tmp)/sampler.err" &
sampler=$!
exec 7>"$fifo"
(unset MARIADB_PASSWORD; for i in $(seq 30); do "$TEND" check w >/dev/null 2>&1
  [ $((i % 10)) != 0 ] || "$TEND" backup w >/dev/null 2>&1; done)
exec 7>&-
wait "$sampler"
sed 's/^/# /' "$(harness_tmp)/sampler.err"
seen=$(sed -n 's/^seen //p' "$(harness_tmp)/sampler.out")
leaks=$(sed -n 's/^leaks //p' "$(harness_tmp)/sampler.out")
ok "the sampler saw the mariadb client running ($seen samples), so the next check means something" test "${seen:-0}" -gt 0
is "$leaks" 0 "no tend or mariadb process showed the password in its argv or environment"

done_testing
