# DES — the two commands a newcomer needs:
#   make demo   the main job on the embedded default (no servers needed)
#   make test   every test
# Both install what they need first (scripts/setup.sh).
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all setup build demo test image-check bench profile fuzz fuzz-mutate clean

all: build

setup:
	@scripts/setup.sh

build: setup
	swift build

demo: setup
	scripts/demo.sh

# The test servers (PostgreSQL; scripts/test-servers.sh) are started first and stopped
# afterwards whatever the outcome; a server that does not start fails the run. Then the
# custom-source template is rendered, built (SQLite only, no libpq), tested and run.
# The HTTP server suites run in a test process of their own: their servers run in that process,
# and other suites block its few cooperative threads while their des children run.
# First, the alerts and dashboards under deploy/ are checked with promtool (scripts/test-monitoring.sh);
# after the build, the Kubernetes overlays and docker-compose.yml (scripts/test-deploy.sh); last,
# schemathesis holds a live des serve to the OpenAPI document it serves (scripts/schemathesis.sh).
test: setup
	scripts/test-monitoring.sh
	swift build --build-tests
	scripts/test-deploy.sh
	trap 'scripts/test-servers.sh down' EXIT; scripts/test-servers.sh up && set -a \
	  && . "$${DES_TEST_SERVERS_DIR:-/tmp/des-test-servers}/env" && set +a && swift test --skip-build --skip DESServerTests \
	  && swift test --skip-build --filter DESServerTests
	scripts/test-template.sh
	SCHEMA_URL=served scripts/schemathesis.sh

# The container image's runtime, proven without Docker (scripts/image-check.sh; docs/deploy.md):
# hadolint on the Dockerfile, then a bare Debian bookworm root with exactly the packages of
# deploy/image/runtime-packages.txt (the Dockerfile's list), where des runs as the image's user:
# --version, config check, the demo's main job, des serve. DES_BINARY=PATH checks a built des;
# without it, des is built as the Dockerfile builds it (release, --static-swift-stdlib).
image-check:
	scripts/image-check.sh

bench: setup
	scripts/bench-pack.sh
	scripts/bench-pipeline.sh
	scripts/bench-postgres.sh
	scripts/bench-heterogeneous.sh
	scripts/bench-s3.sh
	scripts/bench-http.sh
	scripts/bench-compact.sh
	scripts/bench-index.sh
	scripts/bench-auth.sh
	scripts/bench-events.sh
	scripts/bench-scan.sh

# Where the packer's CPU goes (perf samples), in lease mode on 50,000 files; see scripts/profile-packer.sh.
profile: setup
	scripts/profile-packer.sh 50000 lease

# Fuzz the archive reader and the config loader under libFuzzer (coverage-guided, seeded
# with the golden vectors and shipped configs), FUZZ_SECONDS each (default 600, memory
# capped at 100 MB); a crash, hang or leak saves its input under fuzz-crashes/ and fails.
# `make fuzz-mutate` runs the plain seeded-mutation driver that the tests run briefly.
FUZZ_SECONDS ?= 600
fuzz: setup
	scripts/libfuzzer.sh $(FUZZ_SECONDS)

fuzz-mutate: setup
	swift build -c release --product des-fuzz
	mkdir -p fuzz-crashes
	$$(swift build -c release --show-bin-path)/des-fuzz archive --seconds $(FUZZ_SECONDS) --crash-dir fuzz-crashes
	$$(swift build -c release --show-bin-path)/des-fuzz config --seconds $(FUZZ_SECONDS) --configs configs --crash-dir fuzz-crashes

clean:
	rm -rf .build
