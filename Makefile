# DES — the two commands a newcomer needs:
#   make demo   the main job on the embedded default (no servers needed)
#   make test   every test
# Both install what they need first (scripts/setup.sh).
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all setup build demo test bench clean

all: build

setup:
	@scripts/setup.sh

build: setup
	swift build

demo: setup
	scripts/demo.sh

test: setup
	swift build --build-tests
	swift test --skip-build

bench: setup
	scripts/bench-pack.sh
	scripts/bench-pipeline.sh

clean:
	rm -rf .build
