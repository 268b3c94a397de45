#!/usr/bin/env bash
# nudge's test command: the README's "Run the tests", and what .ci/run runs.
#
# The browser tests (the dashboard in headless Chromium, through chromedp) need Debian's
# /usr/bin/chromium. When it is missing, and apt-get is there and we are root, this script
# installs it first (apt-get update && apt-get install -y chromium). Without it the browser
# tests skip with a message, except when CI is set: then they fail, and so does a failed
# install.
#
# Then it runs the whole suite with the race detector, and issue 5's full-size quality test
# without it:
#   go test -race -timeout 45m ./... && go test -tags slow -run 'TestQualityLearntPolicySlow' -timeout 30m ./training/pipeline
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

chromium=/usr/bin/chromium
if [[ -n "${NUDGE_CHROMIUM:-}" ]]; then
	chromium=$NUDGE_CHROMIUM
	echo "test.sh: browser tests use NUDGE_CHROMIUM=$chromium"
elif [[ -x $chromium ]]; then
	echo "test.sh: browser tests use $chromium ($("$chromium" --version 2>/dev/null || echo 'version unknown'))"
elif command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
	echo "test.sh: $chromium is missing; installing Debian's chromium for the browser tests:"
	echo "test.sh: + apt-get update && apt-get install -y chromium"
	if DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; then
		echo "test.sh: installed $("$chromium" --version 2>/dev/null || echo chromium)"
	elif [[ -n "${CI:-}" ]]; then
		echo "test.sh: installing chromium failed and CI is set: the browser tests cannot run" >&2
		exit 1
	else
		echo "test.sh: installing chromium failed: the browser tests will skip" >&2
	fi
else
	echo "test.sh: $chromium is missing and cannot be installed here (needs apt-get and root):" \
		"the browser tests will skip${CI:+, and fail since CI is set}" >&2
fi

echo "test.sh: + go test -race -timeout 45m ./... && go test -tags slow -run 'TestQualityLearntPolicySlow' -timeout 30m ./training/pipeline"
go test -race -timeout 45m ./... && go test -tags slow -run 'TestQualityLearntPolicySlow' -timeout 30m ./training/pipeline
