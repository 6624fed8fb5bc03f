#!/usr/bin/env bash
# Build a real WordPress 6.6.7 + WooCommerce 9.2.5 store (MariaDB, php -S behind nginx TLS) and
# install CartResQ's WordPress plugin. Re-runnable: it wipes $VAR/site and the two databases first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
say() { printf '\n== %s\n' "$*"; }

say "0. packages (installed by .ci/run; here only checked)"
missing=""
mods="$(php -m 2>/dev/null || true)"   # once: `php -m | grep -q` fails under pipefail when grep exits first
for m in mysqli curl mbstring xml intl gd zip; do grep -qix "$m" <<<"$mods" || missing="$missing php-$m"; done
for c in nginx mysql openssl psql; do command -v $c >/dev/null || missing="$missing $c"; done
[ -f "$VENDOR/SHA256SUMS" ] || missing="$missing $VENDOR"
if [ -n "$missing" ]; then echo "FATAL: missing:$missing (.ci/run installs them)" >&2; exit 1; fi

say "1. stop what a previous run of these scripts started"
bash "$RW_DIR/stop.sh" || true
rm -rf "$SITE" "$VAR/nginx-tmp" "$VAR/logs" "$VAR/outbox" "$VAR/results.json"; mkdir -p "$SITE" "$VAR/logs" "$VAR/nginx-tmp" "$VAR/tls"

say "2. sources: WordPress and WooCommerce from $VENDOR (see its README.md)"
(cd "$VENDOR" && sha256sum -c SHA256SUMS)
tar -xzf "$VENDOR/wordpress-6.6.7.tar.gz" -C "$SITE" --strip-components=1
tar -xzf "$VENDOR/woocommerce-9.2.5.tar.gz" -C "$SITE/wp-content/plugins"
grep -m1 "wp_version =" "$SITE/wp-includes/version.php"
grep -m1 "Version:" "$SITE/wp-content/plugins/woocommerce/woocommerce.php"
test -f "$SITE/wp-content/plugins/woocommerce/vendor/autoload.php" && echo "built tree: vendor/ present"
PLUGIN="${CARTRESQ_WP_PLUGIN:-$REPO_DIR/connectors/woocommerce/plugin/cartresq}"
if [ -d "$PLUGIN" ]; then cp -r "$PLUGIN" "$SITE/wp-content/plugins/cartresq"; else echo "no CartResQ plugin at $PLUGIN: not installed"; fi

say "3. TLS: a local CA and a cert for 127.0.0.1 (nginx terminates TLS for store and app)"
cd "$VAR/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=realwoo local CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf -out server.pem 2>/dev/null
cat "$SITE/wp-includes/certificates/ca-bundle.crt" ca.pem > wp-bundle.pem
cd - >/dev/null
cat > "$VAR/nginx.conf" <<NGX
user root;
worker_processes 2;
pid $VAR/nginx.pid;
error_log $VAR/logs/nginx-error.log;
events { worker_connections 256; }
http {
  access_log $VAR/logs/nginx-access.log;
  client_body_temp_path $VAR/nginx-tmp/body; proxy_temp_path $VAR/nginx-tmp/proxy;
  fastcgi_temp_path $VAR/nginx-tmp/fcgi; uwsgi_temp_path $VAR/nginx-tmp/uwsgi; scgi_temp_path $VAR/nginx-tmp/scgi;
  client_max_body_size 20m; proxy_read_timeout 120s; proxy_buffering off;
  ssl_certificate $VAR/tls/server.pem; ssl_certificate_key $VAR/tls/server.key;
  server { listen 127.0.0.1:$WP_TLS_PORT ssl;
    location / { proxy_pass http://127.0.0.1:$WP_PORT; proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-Proto https; proxy_set_header X-Forwarded-For \$remote_addr; } }
  server { listen 127.0.0.1:$APP_TLS_PORT ssl;
    location / { proxy_pass http://127.0.0.1:$APP_PORT; proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-Proto https; proxy_set_header X-Forwarded-For \$remote_addr; } }
}
NGX

say "4. MariaDB database $DB_NAME (the running server; only our own database and user)"
mysql -uroot <<SQL
DROP DATABASE IF EXISTS $DB_NAME;
CREATE DATABASE $DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
SQL

say "5. wp-config.php, router, local-environment mu-plugin"
salt() { head -c 48 /dev/urandom | base64 | tr -d '\n/+='; }
cat > "$SITE/wp-config.php" <<PHP
<?php
define( 'DB_NAME', '$DB_NAME' ); define( 'DB_USER', '$DB_USER' ); define( 'DB_PASSWORD', '$DB_PASS' );
define( 'DB_HOST', 'localhost' ); define( 'DB_CHARSET', 'utf8mb4' ); define( 'DB_COLLATE', '' );
\$table_prefix = 'wp_';
foreach ( array( 'AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT' ) as \$k ) { define( \$k, '$(salt)' . \$k ); }
define( 'WP_HOME', '$STORE_URL' ); define( 'WP_SITEURL', '$STORE_URL' );
// Behind nginx TLS (standard reverse-proxy setup): https when the proxy says so.
if ( isset( \$_SERVER['HTTP_X_FORWARDED_PROTO'] ) && 'https' === \$_SERVER['HTTP_X_FORWARDED_PROTO'] ) { \$_SERVER['HTTPS'] = 'on'; }
define( 'WP_DEBUG', true ); define( 'WP_DEBUG_LOG', '$VAR/logs/wp-debug.log' ); define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_ENVIRONMENT_TYPE', 'local' ); define( 'AUTOMATIC_UPDATER_DISABLED', true ); define( 'WP_HTTP_BLOCK_EXTERNAL', false );
if ( ! defined( 'ABSPATH' ) ) { define( 'ABSPATH', __DIR__ . '/' ); }
require_once ABSPATH . 'wp-settings.php';
PHP
cp "$RW_DIR/router.php" "$SITE/router.php"
mkdir -p "$SITE/wp-content/mu-plugins"
cat > "$SITE/wp-content/mu-plugins/realwoo-local-env.php" <<PHP
<?php
/* Local test environment only (not product code): WordPress's "safe" HTTP API allows only ports
 * 80/443/8080 and trusts only its CA bundle; CartResQ listens on 127.0.0.1:$APP_TLS_PORT with a local CA. */
add_filter( 'http_allowed_safe_ports', function ( \$p ) { \$p[] = $APP_TLS_PORT; \$p[] = $APP_PORT; return \$p; } );
add_filter( 'http_request_args', function ( \$a ) { \$a['sslcertificates'] = '$VAR/tls/wp-bundle.pem'; return \$a; } );
/* Evidence: every outgoing request WordPress makes to CartResQ, exactly as sent, and the answer. */
add_action( 'http_api_debug', function ( \$response, \$context, \$class, \$args, \$url ) {
	if ( false === strpos( \$url, ':$APP_TLS_PORT' ) && false === strpos( \$url, ':$APP_PORT' ) ) { return; }
	\$body = is_string( \$args['body'] ?? null ) ? \$args['body'] : wp_json_encode( \$args['body'] ?? null );
	file_put_contents( '$VAR/logs/wp-outgoing.jsonl', wp_json_encode( array(
		'time' => gmdate( 'c' ), 'method' => \$args['method'] ?? '', 'url' => \$url, 'headers' => \$args['headers'] ?? array(),
		'user-agent' => \$args['user-agent'] ?? '', 'body' => \$body,
		'status' => is_wp_error( \$response ) ? 'WP_Error: ' . \$response->get_error_message() : wp_remote_retrieve_response_code( \$response ),
		'response_body' => is_wp_error( \$response ) ? '' : substr( wp_remote_retrieve_body( \$response ), 0, 500 ),
	) ) . "\n", FILE_APPEND );
}, 10, 5 );
PHP

say "6. install WordPress, activate WooCommerce, configure the store, products, CartResQ plugin"
php "$RW_DIR/wp-install.php" "$SITE" install
php "$RW_DIR/wp-install.php" "$SITE" activate-woo
php "$RW_DIR/wp-install.php" "$SITE" configure
[ -d "$SITE/wp-content/plugins/cartresq" ] && php "$RW_DIR/wp-install.php" "$SITE" activate-cartresq
echo "--- PHP errors/warnings logged during setup (wp-debug.log):"
grep -E "PHP (Fatal|Parse|Warning)" "$VAR/logs/wp-debug.log" 2>/dev/null | sed -e 's/^\[[^]]*\] //' | sort | uniq -c | head -20 || true

say "7. CartResQ database (PostgreSQL db $PG_DB)"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
# This checkout's migrations (the venv's editable install may point at another checkout, as in start.sh)
if [ -x "$VENV/bin/python" ]; then (cd "$REPO_DIR" && DATABASE_URL="$PG_URL" PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}" \
  "$VENV/bin/python" -m app.cli db upgrade); fi
echo "setup done: store $STORE_URL (admin $ADMIN_USER / $ADMIN_PASS), app will be $APP_URL"
