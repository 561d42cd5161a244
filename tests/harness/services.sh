# services.sh: real services on loopback for the tests, each in a temp dir, each
# stopped when the shell that started it exits (even when a test fails).
#   need sshd mariadb wordpress smtp   start what is not already running
# A service already started by tests/run (its variables exported) is reused.
# Exports:
#   sshd:      SSHD_PORT SSHD_USER SSHD_KEY SSHD_KNOWN_HOSTS SSHD_HOST_KEY_PUB SSHD_PIDFILE
#              SSHD_PW_USER SSHD_PW_PASSWORD (a password login; when run as root)
#              SSHD_SLOW_USER (a login whose ~/.bashrc sleeps 0.3 s; when run as root)
#   mariadb:   MARIADB_PORT MARIADB_SOCKET MARIADB_USER MARIADB_PASSWORD MARIADB_DB
#   wordpress: WP_PATH WP_URL WP_PORT WP_POST_TITLE WP_VERSION
#   smtp:      SMTP_PORT SMTP_MAILDIR
#   s3:        S3_ENDPOINT S3_BUCKET S3_KEY_ID S3_SECRET S3_DIR (s3-server.js: s3rver, every
#              request's SigV4 signature and body hash checked)

HARNESS_DIR=${HARNESS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
TEND_SRC=${TEND_SRC:-$(cd "$HARNESS_DIR/../.." && pwd)}
HARNESS_PIDS=""
HARNESS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tend-test.XXXXXX")
chmod 711 "$HARNESS_TMP" # other users (the sshd password user) may pass, not list

_harness_cleanup() {
  local pid
  for pid in $HARNESS_PIDS; do kill "$pid" 2>/dev/null; done
  for pid in $HARNESS_PIDS; do wait "$pid" 2>/dev/null; done
  # what the slow user's sessions left running (a remote `sleep 30` outlives its channel)
  [ -n "${SSHD_SLOW_USER:-}" ] && pkill -KILL -u "$SSHD_SLOW_USER" 2>/dev/null
  [ -n "$HARNESS_TMP" ] && rm -rf "$HARNESS_TMP"
}
trap _harness_cleanup EXIT
trap 'exit 130' INT TERM

harness_tmp() { echo "$HARNESS_TMP"; }

# A TCP port nobody listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# wait_for DESC SECONDS CMD...: poll until CMD succeeds.
wait_for() {
  local desc=$1 tries=$(($2 * 10)); shift 2
  while ! "$@" >/dev/null 2>&1; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || { echo "harness: $desc did not come up" >&2; return 1; }
    sleep 0.1
  done
}

# has_mail TEXT: a message at the SMTP sink contains TEXT (wait_for has_mail "Subject: x").
has_mail() { grep -lq -- "$1" "$SMTP_MAILDIR"/new/* 2>/dev/null; }

_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# sshd_run DIR PORT: an sshd with DIR/host_key, DIR/pub/authorized_keys (readable by
# every user it logs in), on 127.0.0.1:PORT.
# Prints its pid. Password logins are allowed (the harness's password user).
sshd_run() {
  local d=$1 port=$2
  cat > "$d/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $d/pub/authorized_keys
PidFile $d/sshd-$port.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
MaxSessions 64
MaxStartups 64
CONF
  [ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
  /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" </dev/null >/dev/null 2>&1 &
  echo $!
}

start_sshd() {
  local d; d=$(harness_tmp)/sshd
  mkdir -p "$d/pub" && chmod 711 "$d" && chmod 755 "$d/pub"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" -C tend-test-host
  ssh-keygen -q -t ed25519 -N '' -f "$d/user_key" -C tend-test-user
  cp "$d/user_key.pub" "$d/pub/authorized_keys" && chmod 644 "$d/pub/authorized_keys"
  SSHD_PORT=$(free_port)
  SSHD_USER=$(id -un)
  local pid; pid=$(sshd_run "$d" "$SSHD_PORT")
  HARNESS_PIDS="$HARNESS_PIDS $pid"
  wait_for sshd 10 _port_open "$SSHD_PORT" || return 1
  SSHD_KEY=$d/user_key
  SSHD_URL="ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT" # an instance's --host
  SSHD_PIDFILE=$d/sshd-$SSHD_PORT.pid
  SSHD_HOST_KEY_PUB=$d/host_key.pub
  SSHD_KNOWN_HOSTS=$d/known_hosts
  echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$d/host_key.pub")" > "$SSHD_KNOWN_HOSTS"
  # A user who logs in with a password (root only: it needs useradd and chpasswd).
  if [ "$(id -u)" -eq 0 ]; then
    SSHD_PW_USER=tend-test-pw
    SSHD_PW_PASSWORD="pw-$RANDOM-$RANDOM 'q' \"dq\""
    id "$SSHD_PW_USER" >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/sh "$SSHD_PW_USER"
    printf '%s:%s\n' "$SSHD_PW_USER" "$SSHD_PW_PASSWORD" | chpasswd
    export SSHD_PW_USER SSHD_PW_PASSWORD
    # A user whose login shell starts slowly, as on real servers whose rc files start
    # version managers: bash reads ~/.bashrc even for `ssh host cmd`. Each start is
    # counted in ~/rc-starts, so a test can tell the rc file really ran.
    # Its home is a fixed symlink to this harness's folder: the account never changes
    # (usermod refuses while a process of the user lives, as an earlier run's may).
    SSHD_SLOW_USER=tend-test-slow
    local home=$d/slow-home link=/tmp/tend-test-slow-home
    mkdir -p "$home"
    printf 'echo x >> "$HOME/rc-starts"\necho "rc: loading the version manager" >&2\nsleep 0.3\n' > "$home/.bashrc"
    chown -R "$SSHD_SLOW_USER" "$home" 2>/dev/null
    ln -sfn "$home" "$link"
    if ! id "$SSHD_SLOW_USER" >/dev/null 2>&1; then useradd -M -d "$link" -s /bin/bash "$SSHD_SLOW_USER"
    elif [ "$(getent passwd "$SSHD_SLOW_USER" | cut -d: -f6)" != "$link" ]; then
      pkill -KILL -u "$SSHD_SLOW_USER" 2>/dev/null; sleep 0.2
      usermod -d "$link" -s /bin/bash "$SSHD_SLOW_USER"
    fi
    usermod -p '*' "$SSHD_SLOW_USER" # no password, yet not locked: sshd lets a key in
    chown -R "$SSHD_SLOW_USER" "$home"
    export SSHD_SLOW_USER
  fi
  export SSHD_PORT SSHD_USER SSHD_URL SSHD_KEY SSHD_KNOWN_HOSTS SSHD_HOST_KEY_PUB SSHD_PIDFILE
}

# mariadb_root SQL: run SQL as the server's root over its socket.
mariadb_root() { mariadb --no-defaults -S "$MARIADB_SOCKET" -u root -e "$1"; }
# sql [DB] [-e SQL]: the same, its rows tab-separated without a header (SQL on stdin too).
sql() { mariadb --no-defaults -S "$MARIADB_SOCKET" -u root -N -B "$@"; }

start_mariadb() {
  local d; d=$(harness_tmp)/mariadb
  mkdir -p "$d/data"
  mariadb-install-db --no-defaults --datadir="$d/data" --user="$(id -un)" \
    --auth-root-authentication-method=socket --skip-test-db >"$d/install.log" 2>&1 \
    || { cat "$d/install.log" >&2; return 1; }
  MARIADB_PORT=$(free_port)
  MARIADB_SOCKET=$d/mysqld.sock
  MARIADB_ADMIN="mysql://root@localhost/mysql?socket=$MARIADB_SOCKET" # blank's --admin
  mariadbd --no-defaults --datadir="$d/data" --socket="$MARIADB_SOCKET" --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 --pid-file="$d/mysqld.pid" --log-error="$d/error.log" \
    --user="$(id -un)" --skip-log-bin --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=16M --skip-name-resolve 2>"$d/stderr.log" &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for mariadb 30 mariadb-admin --no-defaults -S "$MARIADB_SOCKET" -u root ping || { cat "$d/error.log" >&2; return 1; }
  MARIADB_USER=tend_app
  MARIADB_PASSWORD="app pw; with 'quotes' \"and\" \\backslash"
  MARIADB_DB=wordpress
  local sqlpw=${MARIADB_PASSWORD//\\/\\\\}
  sqlpw=${sqlpw//\'/\\\'}
  mariadb_root "CREATE DATABASE $MARIADB_DB;
    CREATE USER '$MARIADB_USER'@'127.0.0.1' IDENTIFIED BY '$sqlpw';
    CREATE USER '$MARIADB_USER'@'localhost' IDENTIFIED BY '$sqlpw';
    GRANT ALL ON \`$MARIADB_DB\`.* TO '$MARIADB_USER'@'127.0.0.1';
    GRANT ALL ON \`$MARIADB_DB\`.* TO '$MARIADB_USER'@'localhost';" || return 1
  export MARIADB_PORT MARIADB_SOCKET MARIADB_ADMIN MARIADB_USER MARIADB_PASSWORD MARIADB_DB
}

start_wordpress() {
  [ -n "${MARIADB_PORT:-}" ] || start_mariadb || return 1
  local d; d=$(harness_tmp)/wordpress
  WP_PATH=$d/site
  WP_PORT=$(free_port)
  WP_URL=http://127.0.0.1:$WP_PORT
  WP_POST_TITLE="Hello from the tend harness $RANDOM"
  mkdir -p "$d"
  cp -a /usr/share/wordpress "$WP_PATH"
  rm -f "$WP_PATH/.htaccess" "$WP_PATH/wp-config.php"
  mkdir -p "$WP_PATH/wp-content/uploads"
  php -r 'echo "<?php\n";
    foreach (["DB_NAME"=>$argv[1],"DB_USER"=>$argv[2],"DB_PASSWORD"=>$argv[3],"DB_HOST"=>$argv[4],
              "DB_CHARSET"=>"utf8mb4","DB_COLLATE"=>""] as $k=>$v)
      echo "define( ", var_export($k, true), ", ", var_export($v, true), " );\n";
    echo "\$table_prefix = \"wp_\";\n";
    echo "define( \"WP_CONTENT_DIR\", __DIR__ . \"/wp-content\" );\n";
    echo "define( \"WP_AUTO_UPDATE_CORE\", false );\n";
    echo "if ( ! defined( \"ABSPATH\" ) ) define( \"ABSPATH\", __DIR__ . \"/\" );\n";
    echo "require_once ABSPATH . \"wp-settings.php\";\n";' \
    "$MARIADB_DB" "$MARIADB_USER" "$MARIADB_PASSWORD" "127.0.0.1:$MARIADB_PORT" > "$WP_PATH/wp-config.php"
  WP_URL=$WP_URL WP_POST_TITLE=$WP_POST_TITLE php -d error_reporting=0 "$HARNESS_DIR/wp-install.php" "$WP_PATH" \
    > "$d/install.log" 2>&1 || { cat "$d/install.log" >&2; return 1; }
  php -S "127.0.0.1:$WP_PORT" -t "$WP_PATH" > "$d/server.log" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for wordpress 10 _port_open "$WP_PORT" || return 1
  WP_VERSION=$(sed -n "s/^\$wp_version = '\(.*\)';/\1/p" "$WP_PATH/wp-includes/version.php")
  export WP_PATH WP_URL WP_PORT WP_POST_TITLE WP_VERSION
}

start_smtp() {
  local d; d=$(harness_tmp)/smtp
  SMTP_MAILDIR=$d/maildir
  mkdir -p "$SMTP_MAILDIR"/cur "$SMTP_MAILDIR"/new "$SMTP_MAILDIR"/tmp
  SMTP_PORT=$(free_port)
  /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$SMTP_MAILDIR" \
    > "$d/smtp.log" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for smtp 10 _port_open "$SMTP_PORT" || { cat "$d/smtp.log" >&2; return 1; }
  export SMTP_PORT SMTP_MAILDIR
}

# start_s3 [again]: the S3 server; `again` starts it anew on the same port and data
# (after a test stopped it: kill "$S3_PID").
start_s3() {
  local d; d=$(harness_tmp)/s3
  mkdir -p "$d/data"
  [ -d "$TEND_SRC/vendor/s3/node_modules/s3rver" ] || { echo "harness: vendor/s3 is not installed (vendor/install test)" >&2; return 1; }
  if [ "${1:-}" != again ]; then
    S3_PORT=$(free_port) S3_BUCKET=tend-offsite S3_KEY_ID=TENDTESTKEY S3_DIR=$d/data
    S3_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    S3_ENDPOINT=http://127.0.0.1:$S3_PORT
  fi
  # s3rver opens every object's metadata at once to list a prefix (thousands of files),
  # and makes its listings' continuation tokens with DES, in OpenSSL 3's legacy provider
  (ulimit -n 65536 2>/dev/null; exec node --openssl-legacy-provider "$HARNESS_DIR/s3-server.js" "$S3_PORT" "$S3_DIR" "$S3_KEY_ID" "$S3_SECRET" "$S3_BUCKET") \
    >> "$d/s3.log" 2>&1 &
  S3_PID=$!
  HARNESS_PIDS="$HARNESS_PIDS $S3_PID"
  wait_for s3 15 _port_open "$S3_PORT" || { cat "$d/s3.log" >&2; return 1; }
  export S3_ENDPOINT S3_BUCKET S3_KEY_ID S3_SECRET S3_DIR S3_PORT S3_PID
}

# apache_serve DIR PORT: Debian's Apache with mod_php and mod_rewrite serving DIR on
# 127.0.0.1:PORT, .htaccess files honored (AllowOverride All), as a Tiki or generic PHP
# site is served; stopped with the harness. Needs root (it runs its children as www-data).
apache_serve() {
  local root=$1 port=$2 vhosts=${3:-} d m=/usr/lib/apache2/modules docroot
  d=$(harness_tmp)/apache-$port
  mkdir -p "$d"
  docroot="DocumentRoot $root"
  # --vhosts: one site per sub-folder, by the first label of the Host header (N.show.localhost
  # is ROOT/N), as a show host serves hundreds of sites with one configuration
  [ "$vhosts" = --vhosts ] && docroot="LoadModule vhost_alias_module $m/mod_vhost_alias.so
UseCanonicalName Off
VirtualDocumentRoot $root/%1"
  cat > "$d/httpd.conf" <<CONF
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $d/httpd.pid
ErrorLog $d/error.log
LogLevel warn
DefaultRuntimeDir $d
User www-data
Group www-data
LoadModule mpm_prefork_module $m/mod_mpm_prefork.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule dir_module $m/mod_dir.so
LoadModule mime_module $m/mod_mime.so
LoadModule rewrite_module $m/mod_rewrite.so
LoadModule headers_module $m/mod_headers.so
LoadModule php_module $m/libphp8.2.so
TypesConfig /etc/mime.types
$docroot
DirectoryIndex index.php
<Directory />
  AllowOverride None
  Require all denied
</Directory>
<Directory $root>
  AllowOverride All
  Require all granted
</Directory>
<FilesMatch "\.php\$">
  SetHandler application/x-httpd-php
</FilesMatch>
CONF
  # its own session: Apache signals its process group when it stops, which must not be ours
  setsid /usr/sbin/apache2 -f "$d/httpd.conf" -DFOREGROUND > "$d/stderr.log" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for "apache on $port" 10 _port_open "$port" || { cat "$d/stderr.log" "$d/error.log" >&2; return 1; }
}

# nginx_fpm_serve DIR PORT: Debian's nginx in front of Debian's PHP-FPM (a pool of its
# own on a socket in the harness's temp dir) serving DIR on 127.0.0.1:PORT, the way PHP
# sites are served without Apache: no .htaccess, PHP-FPM reading .user.ini. Its
# user_ini.cache_ttl is 2 s (300 by default) so tests do not wait five minutes for a
# .user.ini to be read. Both run as root here (-R), stopped with the harness.
nginx_fpm_serve() {
  local root=$1 port=$2 d
  d=$(harness_tmp)/nginx-$port
  mkdir -p "$d/tmp"
  cat > "$d/php-fpm.conf" <<CONF
[global]
pid = $d/php-fpm.pid
error_log = $d/php-fpm.log
daemonize = no
[site]
user = root
group = root
listen = $d/php.sock
pm = static
pm.max_children = 2
php_admin_value[user_ini.cache_ttl] = 2
catch_workers_output = yes
CONF
  cat > "$d/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  fastcgi_temp_path $d/tmp/fastcgi;
  proxy_temp_path $d/tmp/proxy;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  include /etc/nginx/mime.types;
  server {
    listen 127.0.0.1:$port;
    root $root;
    index index.php;
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi.conf;
      fastcgi_pass unix:$d/php.sock;
    }
  }
}
CONF
  setsid /usr/sbin/php-fpm8.2 -R -F -y "$d/php-fpm.conf" > "$d/php-fpm.stderr" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  setsid /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" > "$d/nginx.stderr" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for "nginx on $port" 10 _port_open "$port" || { cat "$d"/*.stderr "$d/error.log" "$d/php-fpm.log" >&2; return 1; }
  wait_for "php-fpm of $port" 10 test -S "$d/php.sock" || { cat "$d"/*.stderr "$d/php-fpm.log" >&2; return 1; }
}

# need SERVICE...: start the services not already running (started by tests/run).
need() {
  local s
  for s in "$@"; do
    case $s in
      sshd) [ -n "${SSHD_PORT:-}" ] || start_sshd || bail "sshd failed to start" ;;
      mariadb) [ -n "${MARIADB_PORT:-}" ] || start_mariadb || bail "mariadb failed to start" ;;
      wordpress) [ -n "${WP_PORT:-}" ] || start_wordpress || bail "wordpress failed to start" ;;
      smtp) [ -n "${SMTP_PORT:-}" ] || start_smtp || bail "smtp sink failed to start" ;;
      s3) [ -n "${S3_PORT:-}" ] || start_s3 || bail "the S3 server failed to start" ;;
      *) bail "need: unknown service $s" ;;
    esac
  done
}

# fresh_home: a new TEND_HOME, and a HOME of its own (no ~/.ssh keys, known_hosts or
# ~/.config of the machine's user), both removed with the harness's temp dir.
fresh_home() {
  TEND_HOME=$(mktemp -d "$(harness_tmp)/tend-home.XXXXXX")
  HOME=$(mktemp -d "$(harness_tmp)/user-home.XXXXXX")
  export TEND_HOME HOME
}

# add_wordpress_over_ssh NAME: the harness WordPress as instance NAME, reached over the
# harness sshd, its host key trusted.
add_wordpress_over_ssh() {
  "$TEND" instance add "$1" --app wordpress --host "$SSHD_URL" \
    --ssh-key "$SSHD_KEY" --path "$WP_PATH" >/dev/null 2>&1 &&
  "$TEND" host trust "$1" >/dev/null 2>&1
}

# wp_sql SQL: run SQL in the harness WordPress database as its app user; rows tab-separated.
wp_sql() {
  [ -f "$HARNESS_TMP/wp-client.cnf" ] ||
    printf '[client]\npassword="%s"\n' "$(printf '%s' "$MARIADB_PASSWORD" | sed 's/[\\"]/\\&/g')" \
      > "$HARNESS_TMP/wp-client.cnf"
  mariadb --defaults-extra-file="$HARNESS_TMP/wp-client.cnf" -h 127.0.0.1 -P "$MARIADB_PORT" \
    -u "$MARIADB_USER" -N -B "$MARIADB_DB" -e "$1"
}

# bytes_in DIR FILE: whether 100 bytes from the middle of FILE (random bytes, which zstd
# keeps as they are) are in any file under DIR, as they are on disk.
bytes_in() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import os, sys
needle = open(sys.argv[2], "rb").read()[1000:1100]
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        if needle in open(os.path.join(d, f), "rb").read():
            sys.exit(0)
sys.exit(1)
PY
}

# flip_object HEX: damage one stored object of $TEND_HOME (a loose file or its range of
# a pack) by inverting its middle byte; the same call again mends it.
flip_object() {
  /usr/bin/python3 - "$TEND_HOME/store" "$1" <<'PY'
import os, sqlite3, sys
store, hex = sys.argv[1], sys.argv[2]
path, off, length = os.path.join(store, "objects", hex[:2], hex[2:]), 0, None
if not os.path.exists(path):
    row = sqlite3.connect(os.path.join(store, "index.db")).execute(
        "SELECT pack, offset, length FROM packed WHERE hex = ?", (hex,)).fetchone()
    if row is None:
        sys.exit("flip_object: no object " + hex)
    path, off, length = os.path.join(store, "packs", row[0] + ".pack"), row[1], row[2]
if length is None:
    length = os.path.getsize(path)
with open(path, "r+b") as f:
    f.seek(off + length // 2)
    b = f.read(1)[0]
    f.seek(off + length // 2)
    f.write(bytes([b ^ 0xFF]))
PY
}

TEND=${TEND:-$TEND_SRC/build/tend}
