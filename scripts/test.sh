#!/usr/bin/env bash
# The one test command: installs what the tests need (scripts/install-test-deps.sh), then runs
# every test with cargo-nextest. Extra arguments go to nextest (as filters: `--test NAME` would be
# added to --all-targets, not narrow it), e.g.
#   bash scripts/test.sh ingest                               # tests whose name contains "ingest"
#   bash scripts/test.sh -E 'test(/^browser::/)'              # only tests/it/browser.rs
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

bash scripts/install-test-deps.sh

# What the tests look for (tests/common/): the moto server binary, chromedriver and Chromium.
export MOTO_SERVER="${MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export PATH="$PWD/.venv/bin:$PATH"

step "cargo nextest run --workspace --all-targets --no-fail-fast $*"
cargo nextest run --workspace --all-targets --no-fail-fast "$@"

# nextest does not run doc tests. Run them only for a full run and only when a doc comment in src/
# has a code block, so the common case costs nothing.
if [ "$#" -eq 0 ] && grep -rqE '^[[:space:]]*//[/!].*```' src; then
    step "cargo test --doc"
    cargo test --doc
fi
