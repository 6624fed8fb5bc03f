# Settings for a real WordPress + WooCommerce store on this machine (sourced by setup.sh, start.sh, stop.sh).
# The project's copy of ../shared/realwoo (tests/realwoo drives it); everything can be overridden from the
# environment. The sources come from ../shared/vendor beside the checkout (read-only).
RW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="${CARTRESQ_DIR:-$(cd "$RW_DIR/../.." && pwd)}"       # this checkout: its WordPress plugin is installed
VENDOR="${REALWOO_VENDOR:-$(dirname "$REPO_DIR")/shared/vendor}"  # wordpress-6.6.7.tar.gz, woocommerce-9.2.5.tar.gz
VENV="${CARTRESQ_VENV:-$REPO_DIR/.venv}"                      # the virtualenv whose `cartresq` start.sh runs
VAR="${REALWOO_VAR:-/tmp/realwoo-var}"                        # site, certificates, logs, pids (outside the repo)
SITE="$VAR/site"
BASE="${REALWOO_PORT_BASE:-8401}"
WP_PORT=$BASE                 # php -S, plain http on loopback
APP_PORT=$((BASE + 1))        # cartresq serve, plain http on loopback
WP_TLS_PORT=$((BASE + 2))     # nginx TLS -> WP_PORT: the store URL that merchants and WooCommerce see
APP_TLS_PORT=$((BASE + 3))    # nginx TLS -> APP_PORT: APP_URL (wc-auth refuses a callback_url that is not https)
STORE_URL="https://127.0.0.1:$WP_TLS_PORT"
APP_URL="https://127.0.0.1:$APP_TLS_PORT"
DB_NAME="${REALWOO_DB:-realwoo_wp}"; DB_USER=realwoo; DB_PASS=realwoo_pw    # MariaDB (127.0.0.1:3306)
ADMIN_USER=admin; ADMIN_PASS=admin-pass-123
PG_DB="${REALWOO_PG_DB:-realwoo}"
PG_URL="postgresql://postgres@127.0.0.1:5432/$PG_DB"
export REALWOO_HPOS="${REALWOO_HPOS:-yes}"   # yes: orders in the HPOS tables (the default of new shops); no: posts
export REALWOO_STORE_HOST="127.0.0.1:$WP_TLS_PORT"
