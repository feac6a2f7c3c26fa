#!/usr/bin/env bash
# Install or upgrade Whale Watch on a Debian server. Safe to run again: every step checks what is
# already there, and an existing /etc/whalewatch/whalewatch.env is never overwritten.
#
#   sudo deploy/install.sh                 install or upgrade from this checkout
#   deploy/install.sh --dry-run            print what would be done, change nothing
#   deploy/install.sh --prefix /tmp/stage  install under a scratch root (no user, no systemctl)
#
# Options:
#   --prefix DIR     root for every path (default /). With a prefix no system user is created
#                    and systemctl is not called: for staging and for the test suite.
#   --venv DIR       virtual environment to create or reuse (default PREFIX/opt/whalewatch/venv)
#   --python PATH    interpreter for a new venv (default python3.11)
#   --skip-pip       do not pip-install the dependencies into the venv
#   --skip-django    do not run migrate, collectstatic and check --deploy
#   --start          start (or restart) whalewatch.target at the end
#   --dry-run        print the actions instead of doing them
#
# Layout (docs/OPERATIONS.md, "Install"):
#   /opt/whalewatch/app      the code (replaced on upgrade; the previous one kept as app.previous)
#   /opt/whalewatch/venv     the virtual environment
#   /etc/whalewatch/         whalewatch.env (root:whalewatch 0640)
#   /var/lib/whalewatch/     state: static files, beat schedule, ingest-state.json, overflow
#   /var/log/whalewatch/     spare log folder (logs go to the journal)
#   /etc/systemd/system/     whalewatch-{web,worker,beat,ingest}.service, whalewatch.target
set -euo pipefail

SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=""
VENV=""
PYTHON=python3.11
SKIP_PIP=0
SKIP_DJANGO=0
START=0
DRY_RUN=0
SERVICE_USER=whalewatch

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2%/}; shift 2 ;;
    --venv) VENV=$2; shift 2 ;;
    --python) PYTHON=$2; shift 2 ;;
    --skip-pip) SKIP_PIP=1; shift ;;
    --skip-django) SKIP_DJANGO=1; shift ;;
    --start) START=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

APP_DIR=$PREFIX/opt/whalewatch/app
VENV=${VENV:-$PREFIX/opt/whalewatch/venv}
ETC_DIR=$PREFIX/etc/whalewatch
ENV_FILE=$ETC_DIR/whalewatch.env
VAR_DIR=$PREFIX/var/lib/whalewatch
LOG_DIR=$PREFIX/var/log/whalewatch
UNIT_DIR=$PREFIX/etc/systemd/system
NGINX_DIR=$PREFIX/etc/nginx/sites-available
BIN_DIR=$PREFIX/usr/local/bin

# A real install (no prefix) manages the system user and systemd; a staged one does neither.
SYSTEM=0
[ -z "$PREFIX" ] && SYSTEM=1

say() { printf '==> %s\n' "$*"; }
run() {  # print and run a command (only print it in a dry run)
  printf '  + %s\n' "$*"
  [ "$DRY_RUN" = 1 ] || "$@"
}
user_exists() { id -u "$SERVICE_USER" >/dev/null 2>&1; }

if [ "$SYSTEM" = 1 ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo), or use --prefix DIR / --dry-run" >&2
  exit 1
fi

# --- 1. the system user ------------------------------------------------------------------------
say "system user $SERVICE_USER"
if user_exists; then
  echo "  exists"
elif [ "$SYSTEM" = 1 ]; then
  run useradd --system --user-group --home-dir /var/lib/whalewatch --no-create-home \
    --shell /usr/sbin/nologin --comment "Whale Watch" "$SERVICE_USER"
else
  echo "  skipped (--prefix): a staged install creates no user"
fi

own() {  # owner mode path...: set ownership only where the user exists
  local owner=$1 mode=$2; shift 2
  run chmod "$mode" "$@"
  if user_exists && [ "$(id -u)" = 0 ]; then run chown "$owner" "$@"; fi
}

# --- 2. folders --------------------------------------------------------------------------------
say "folders"
run mkdir -p "$PREFIX/opt/whalewatch" "$ETC_DIR" "$VAR_DIR/static" "$LOG_DIR" "$UNIT_DIR" \
  "$NGINX_DIR" "$BIN_DIR"
# nginx (www-data) must reach the static files, and nothing else in the state folder.
own "$SERVICE_USER:$SERVICE_USER" 0711 "$VAR_DIR"
own "$SERVICE_USER:$SERVICE_USER" 0755 "$VAR_DIR/static"
own "$SERVICE_USER:$SERVICE_USER" 0750 "$LOG_DIR"
own "root:$SERVICE_USER" 0750 "$ETC_DIR"

# --- 3. the code -------------------------------------------------------------------------------
say "code in $APP_DIR"
if [ -d "$APP_DIR" ] && [ "$(cd "$APP_DIR" && pwd -P)" = "$(cd "$SOURCE_DIR" && pwd -P)" ]; then
  echo "  running from $APP_DIR itself: nothing to copy"
else
  # Copy to a fresh folder and swap, so files deleted upstream (an old migration, say) do not
  # linger; the previous version stays next to it for a rollback.
  staging=$APP_DIR.new
  run rm -rf "$staging"
  run mkdir -p "$staging"
  if [ "$DRY_RUN" = 0 ]; then
    tar -C "$SOURCE_DIR" --exclude=./.venv --exclude=./var --exclude=./.git \
      --exclude='__pycache__' --exclude=./.pytest_cache --exclude=./.ruff_cache \
      --exclude=./tests/artifacts -cf - . | tar -C "$staging" -xf -
  else
    echo "  + tar -C $SOURCE_DIR ... | tar -C $staging -xf -"
  fi
  if [ -d "$APP_DIR" ]; then
    run rm -rf "$APP_DIR.previous"
    run mv "$APP_DIR" "$APP_DIR.previous"
  fi
  run mv "$staging" "$APP_DIR"
  run chmod -R u=rwX,go=rX "$APP_DIR"
fi

# --- 4. the virtual environment ----------------------------------------------------------------
say "virtual environment $VENV"
if [ -x "$VENV/bin/python" ]; then
  echo "  exists"
else
  run "$PYTHON" -m venv "$VENV"
fi
if [ "$SKIP_PIP" = 1 ]; then
  echo "  dependencies: skipped (--skip-pip)"
else
  run "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # pyproject.toml pins every dependency; the project itself installs no package.
  run "$VENV/bin/python" -m pip install --quiet "$APP_DIR"
fi

# --- 5. the environment file (never overwritten) -------------------------------------------------
say "environment file $ENV_FILE"
if [ -e "$ENV_FILE" ]; then
  echo "  exists: left as it is"
  # Name the variables a newer version documents that this file does not set, so an upgrade
  # can review them (all have defaults).
  missing=$(comm -23 \
    <(grep -oE '^[A-Z][A-Z0-9_]*=' "$SOURCE_DIR/deploy/whalewatch.env.example" | sort -u) \
    <(grep -oE '^[#; ]*[A-Z][A-Z0-9_]*=' "$ENV_FILE" | tr -d '#; ' | sort -u) || true)
  if [ -n "$missing" ]; then
    echo "  not set there (defaults apply; see deploy/whalewatch.env.example):"
    echo "$missing" | tr -d '=' | sed 's/^/    /'
  fi
elif [ "$DRY_RUN" = 1 ]; then
  echo "  + would write it from deploy/whalewatch.env.example with a new SECRET_KEY (mode 0640)"
else
  # Written by Python so that the generated key and the paths need no shell quoting.
  (umask 077 && "$VENV/bin/python" - "$SOURCE_DIR/deploy/whalewatch.env.example" "$ENV_FILE" \
      "$VAR_DIR" <<'PY'
import re, secrets, sys
example, target, var_dir = sys.argv[1:4]
text = open(example, encoding="utf-8").read()
text = re.sub(r"(?m)^SECRET_KEY=.*$", "SECRET_KEY=" + secrets.token_urlsafe(50), text)
text = re.sub(r"(?m)^WHALE_VAR_DIR=.*$", "WHALE_VAR_DIR=" + var_dir, text)
text = re.sub(r"(?m)^STATIC_ROOT=.*$", "STATIC_ROOT=" + var_dir + "/static", text)
with open(target, "x", encoding="utf-8") as out:  # "x": never replace an existing file
    out.write(text)
PY
  )
  own "root:$SERVICE_USER" 0640 "$ENV_FILE"
  echo "  written with a new SECRET_KEY. Edit it now: SITE_URL, ALLOWED_HOSTS, DATABASE_URL,"
  echo "  REDIS_URL, e-mail, WHALE_METRICS_TOKEN (docs/OPERATIONS.md, \"Configuration\")."
fi

# --- 6. systemd units, nginx site, the manage wrapper ---------------------------------------------
install_if_changed() {  # mode source target: copy only when the content differs
  if [ -e "$3" ] && cmp -s "$2" "$3"; then
    echo "  unchanged $3"
    return 1
  fi
  run install -m "$1" "$2" "$3"
}

say "systemd units in $UNIT_DIR"
units_changed=0
for unit in "$SOURCE_DIR"/deploy/systemd/*.service "$SOURCE_DIR"/deploy/systemd/*.target; do
  if install_if_changed 0644 "$unit" "$UNIT_DIR/$(basename "$unit")"; then units_changed=1; fi
done

say "nginx site"
if [ -e "$NGINX_DIR/whalewatch.conf" ]; then
  echo "  $NGINX_DIR/whalewatch.conf exists: left as it is (compare with deploy/nginx/)"
else
  run install -m 0644 "$SOURCE_DIR/deploy/nginx/whalewatch.conf" "$NGINX_DIR/whalewatch.conf"
  echo "  edit server_name and the certificate paths, then enable it (docs/OPERATIONS.md)"
fi

say "whalewatch-manage (manage.py as $SERVICE_USER with the service environment)"
wrapper=$(mktemp)
trap 'rm -f "$wrapper"' EXIT
cat >"$wrapper" <<SH
#!/bin/sh
# Run a manage.py command the way the services run: as $SERVICE_USER, with $ENV_FILE.
#   whalewatch-manage purge_history --dry-run
set -e
cd "$APP_DIR"
command="$VENV/bin/python $APP_DIR/deploy/envfile.py $ENV_FILE -- $VENV/bin/python manage.py"
if [ "\$(id -u)" = 0 ] && id -u $SERVICE_USER >/dev/null 2>&1; then
  exec runuser -u $SERVICE_USER -- \$command "\$@"
fi
exec \$command "\$@"
SH
install_if_changed 0755 "$wrapper" "$BIN_DIR/whalewatch-manage" || true

# --- 7. database and static files --------------------------------------------------------------
if [ "$SKIP_DJANGO" = 1 ]; then
  say "migrate / collectstatic: skipped (--skip-django)"
else
  manage=("$BIN_DIR/whalewatch-manage")
  if [ "$DRY_RUN" = 1 ] || [ ! -x "$BIN_DIR/whalewatch-manage" ]; then
    manage=("$VENV/bin/python" "$APP_DIR/deploy/envfile.py" "$ENV_FILE" -- \
      "$VENV/bin/python" "$APP_DIR/manage.py")
  fi
  say "database migrations"
  run "${manage[@]}" migrate --noinput
  say "static files"
  run "${manage[@]}" collectstatic --noinput --verbosity 0
  say "deployment checks"
  run "${manage[@]}" check --deploy || echo "  (fix the settings above in $ENV_FILE)"
fi

# --- 8. systemd --------------------------------------------------------------------------------
if [ "$SYSTEM" = 1 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  say "systemd"
  if [ "$units_changed" = 1 ]; then run systemctl daemon-reload; fi
  run systemctl enable whalewatch.target
  if [ "$START" = 1 ]; then
    run systemctl restart whalewatch.target
  else
    echo "  start with: systemctl start whalewatch.target"
  fi
else
  say "systemd: skipped (staged install or no running systemd)"
fi
say "done"
